/**
 * The owner's Insights screen: pictures of GET /insights over the last 30 days — turns and errors per day, p50/p95
 * total latency per model, cost per model and per user. uPlot draws them; this module (and uPlot with it) is a chunk of
 * its own, loaded only when the screen opens.
 */
import { useEffect, useRef, useState } from 'react';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import './insights.css';
import { ChatdError } from '@chatd-edge/sdk';
import { client, errorText } from '../api';

type GroupBy = 'day' | 'model' | 'user';
interface Row {
  key: string;
  turns: number;
  errors: Record<string, number>;
  first_token_ms: { p50: number | null; p95: number | null };
  total_ms: { p50: number | null; p95: number | null };
  input_tokens: number;
  output_tokens: number;
  cost: string;
}
type Data = Record<GroupBy, Row[]>;

async function load(group_by: GroupBy): Promise<Row[]> {
  const { data, response } = await client.raw.GET('/api/v2/insights', { params: { query: { group_by } } });
  if (!data) throw new ChatdError(response.status, `Insights answered ${response.status}.`);
  return data.rows;
}

const errorsOf = (r: Row) => Object.values(r.errors).reduce((a, n) => a + n, 0);

/** One uPlot chart in a figure; bars when `bars`, with the x axis labelled by `labels`. */
function Chart(props: { title: string; labels: string[]; series: { label: string; values: (number | null)[]; color: string }[]; unit: string; bars?: boolean; time?: number[] }) {
  const box = useRef<HTMLDivElement>(null);
  const { title, labels, series, unit, bars, time } = props;
  useEffect(() => {
    const el = box.current;
    if (!el) return;
    const xs = time ?? labels.map((_, i) => i);
    // Bars of later series are drawn narrower, over the earlier ones (p95 behind p50).
    const barsOf = (i: number) => (bars ? uPlot.paths.bars?.({ size: [0.7 - i * 0.3, 60], gap: 2 }) : undefined);
    const day = 86_400;
    const xRange: uPlot.Range.MinMax = time ? [Date.now() / 1000 - 30 * day, Date.now() / 1000 + day / 2] : [-0.5, labels.length - 0.5];
    const opts: uPlot.Options = {
      width: Math.max(320, el.clientWidth || 600),
      height: 220,
      scales: { x: { time: time !== undefined, range: () => xRange }, y: { range: (_u, _min, max) => [0, max > 0 ? max * 1.1 : 1] } },
      axes: [
        time ? {} : { values: (_u, splits) => splits.map((v) => (Number.isInteger(v) ? (labels[v] ?? '') : '')) },
        { label: unit, size: 60 },
      ],
      series: [
        {},
        ...series.map((s, i) => ({ label: s.label, stroke: s.color, fill: bars ? s.color : undefined, width: bars ? 0 : 2, paths: barsOf(i), points: { show: !bars } })),
      ],
    };
    const plot = new uPlot(opts, [xs, ...series.map((s) => s.values)], el);
    return () => {
      plot.destroy();
    };
  }, [labels, series, unit, bars, time]);
  return (
    <figure className="insights-chart">
      <figcaption>{title}</figcaption>
      <div ref={box} role="img" aria-label={`${title}: ${labels.map((l, i) => `${l} ${series.map((s) => `${s.label} ${s.values[i] ?? 'none'}`).join(', ')}`).join('; ')}`} />
    </figure>
  );
}

export default function Insights() {
  const [data, setData] = useState<Data | null>(null);
  const [names, setNames] = useState<Record<string, string>>({});
  const [error, setError] = useState('');
  useEffect(() => {
    let live = true;
    Promise.all([load('day'), load('model'), load('user')])
      .then(([day, model, user]) => {
        if (live) setData({ day, model, user });
      })
      .catch((e: unknown) => {
        if (live) setError(errorText(e));
      });
    void (async () => {
      const out: Record<string, string> = {};
      for await (const u of client.users()) out[u.id] = u.username;
      setNames((n) => (live ? out : n));
    })().catch(() => undefined);
    return () => {
      live = false;
    };
  }, []);

  if (error) return <p role="alert" className="error">{error}</p>;
  if (!data) return <p aria-live="polite">Loading insights…</p>;
  const turns = data.day.reduce((a, r) => a + r.turns, 0);
  return (
    <section className="insights" aria-labelledby="insights-heading">
      <h1 id="insights-heading">Insights</h1>
      <p>
        The last 30 days: {turns} model calls, {data.day.reduce((a, r) => a + errorsOf(r), 0)} failed.
      </p>
      {turns === 0 ? (
        <p>No model calls yet in this window.</p>
      ) : (
        <div className="insights-grid">
          <Chart
            title="Turns and errors per day"
            labels={data.day.map((r) => r.key)}
            time={data.day.map((r) => Date.parse(`${r.key}T00:00:00Z`) / 1000)}
            unit="calls"
            bars
            series={[
              { label: 'turns', values: data.day.map((r) => r.turns), color: '#2563eb' },
              { label: 'errors', values: data.day.map(errorsOf), color: '#dc2626' },
            ]}
          />
          <Chart
            title="Latency per model (total, ms)"
            labels={data.model.map((r) => r.key)}
            unit="ms"
            bars
            series={[
              { label: 'p95', values: data.model.map((r) => r.total_ms.p95), color: '#ca8a04' },
              { label: 'p50', values: data.model.map((r) => r.total_ms.p50), color: '#16a34a' },
            ]}
          />
          <Chart
            title="Cost per model"
            labels={data.model.map((r) => r.key)}
            unit="cost"
            bars
            series={[{ label: 'cost', values: data.model.map((r) => Number(r.cost)), color: '#7c3aed' }]}
          />
          <Chart
            title="Cost per user"
            labels={data.user.map((r) => names[r.key] ?? r.key.slice(0, 8))}
            unit="cost"
            bars
            series={[{ label: 'cost', values: data.user.map((r) => Number(r.cost)), color: '#0891b2' }]}
          />
        </div>
      )}
    </section>
  );
}
