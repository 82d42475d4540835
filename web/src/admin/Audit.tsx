import { type SyntheticEvent, useCallback, useEffect, useState } from 'react';
import { client, errorText } from '../api';
import { ErrorLine } from './ErrorLine';

type Events = Awaited<ReturnType<typeof client.auditEvents>>['events'];
type Action = NonNullable<Parameters<typeof client.auditEvents>[0]>['action'];
const PAGE = 50;

/** The audit log: filters, paging, CSV download. */
export function Audit() {
  const [events, setEvents] = useState<Events | null>(null);
  const [error, setError] = useState('');
  const [filters, setFilters] = useState<{ action?: string; actor_id?: string; from?: string; to?: string }>({});
  const [offset, setOffset] = useState(0);
  const query = useCallback(() => {
    const q: Record<string, string> = {};
    if (filters.action) q.action = filters.action;
    if (filters.actor_id) q.actor_id = filters.actor_id;
    if (filters.from) q.from = new Date(filters.from).toISOString();
    if (filters.to) q.to = new Date(filters.to).toISOString();
    return q;
  }, [filters]);
  useEffect(() => {
    setError('');
    const q = query();
    client.auditEvents({ ...q, action: q.action as Action, limit: PAGE, offset }).then(
      (r) => setEvents(r.events),
      (e: unknown) => setError(errorText(e)),
    );
  }, [query, offset]);
  const apply = (e: SyntheticEvent<HTMLFormElement>) => {
    e.preventDefault();
    const f = new FormData(e.currentTarget);
    const v = (k: string) => {
      const x = f.get(k);
      return typeof x === 'string' && x.trim() !== '' ? x.trim() : undefined;
    };
    setOffset(0);
    setFilters({ action: v('action'), actor_id: v('actor_id'), from: v('from'), to: v('to') });
  };
  const csv = `/api/v2/audit?${new URLSearchParams({ ...query(), format: 'csv', limit: '1000' }).toString()}`;
  return (
    <section aria-labelledby="audit-heading">
      <h2 id="audit-heading">Audit log</h2>
      <form className="row wrap" onSubmit={apply}>
        <label>
          Action
          <input name="action" placeholder="user.login" />
        </label>
        <label>
          Actor ID
          <input name="actor_id" />
        </label>
        <label>
          From
          <input name="from" type="datetime-local" />
        </label>
        <label>
          To
          <input name="to" type="datetime-local" />
        </label>
        <button type="submit">Filter</button>
        <a className="button" href={csv} download="audit.csv">
          Download CSV
        </a>
      </form>
      <ErrorLine error={error} />
      {events === null ? (
        <p>Loading…</p>
      ) : (
        <table>
          <thead>
            <tr>
              <th>When</th>
              <th>Actor</th>
              <th>Action</th>
              <th>Target</th>
              <th>IP</th>
              <th>Detail</th>
            </tr>
          </thead>
          <tbody>
            {events.map((e) => (
              <tr key={e.id}>
                <td>{new Date(e.at).toLocaleString()}</td>
                <td>{e.actor_email ?? '—'}</td>
                <td>{e.action}</td>
                <td>{e.target_type ? `${e.target_type} ${e.target_id ?? ''}` : '—'}</td>
                <td>{e.ip ?? '—'}</td>
                <td>
                  <code>{JSON.stringify(e.detail)}</code>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <div className="row">
        <button type="button" disabled={offset === 0} onClick={() => setOffset(Math.max(0, offset - PAGE))}>
          Newer
        </button>
        <button type="button" disabled={(events?.length ?? 0) < PAGE} onClick={() => setOffset(offset + PAGE)}>
          Older
        </button>
      </div>
    </section>
  );
}
