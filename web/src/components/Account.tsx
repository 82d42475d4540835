import type { SpendLimitState, UsageReport } from '@chatd-edge/sdk';
import { type SyntheticEvent, useEffect, useState } from 'react';
import { client, errorText, withTimeout } from '../api';

/** Change my password (the API revokes my other sessions; API keys stay). */
export function ChangePassword() {
  const [state, setState] = useState<'' | 'pending' | 'done'>('');
  const [error, setError] = useState('');
  const submit = async (e: SyntheticEvent<HTMLFormElement>) => {
    e.preventDefault();
    const form = e.currentTarget;
    const data = new FormData(form);
    const field = (name: string) => {
      const v = data.get(name);
      return typeof v === 'string' ? v : '';
    };
    const next = field('new_password');
    if (next !== field('repeat')) {
      setError('The new password and its repetition differ.');
      return;
    }
    setState('pending');
    setError('');
    try {
      await withTimeout(client.changePassword({ old_password: field('old_password'), new_password: next }), 'Changing the password');
      form.reset();
      setState('done');
    } catch (err) {
      setError(errorText(err));
      setState('');
    }
  };
  return (
    <section aria-labelledby="password-heading">
      <h2 id="password-heading">Password</h2>
      <form className="row wrap" onSubmit={(e) => void submit(e)}>
        <label>
          Current password
          <input name="old_password" type="password" autoComplete="current-password" required />
        </label>
        <label>
          New password
          <input name="new_password" type="password" autoComplete="new-password" minLength={8} required />
        </label>
        <label>
          Repeat the new password
          <input name="repeat" type="password" autoComplete="new-password" minLength={8} required />
        </label>
        <button type="submit" disabled={state === 'pending'}>
          {state === 'pending' ? 'Changing…' : 'Change password'}
        </button>
      </form>
      {state === 'done' && <p role="status">Password changed. Your other sessions were signed out.</p>}
      {error && (
        <p role="alert" className="error">
          {error}
        </p>
      )}
    </section>
  );
}

/** My usage this month by day (a bar per day, by tokens), and my spend limit. */
export function MyUsage() {
  const [report, setReport] = useState<UsageReport | null>(null);
  const [limit, setLimit] = useState<SpendLimitState | null>(null);
  const [error, setError] = useState('');
  useEffect(() => {
    withTimeout(Promise.all([client.myUsage({ group_by: 'day' }), client.mySpendLimit()]), 'Reading your usage').then(
      ([r, l]) => {
        if (typeof r !== 'string') setReport(r);
        setLimit(l);
      },
      (e: unknown) => setError(errorText(e)),
    );
  }, []);
  const days = (report?.groups ?? []).flatMap((g) => ('day' in g ? [{ day: g.day, tokens: g.total_tokens, cost: g.cost }] : []));
  const max = Math.max(1, ...days.map((d) => d.tokens));
  return (
    <section aria-labelledby="usage-heading">
      <h2 id="usage-heading">My usage</h2>
      {error && (
        <p role="alert" className="error">
          {error}
        </p>
      )}
      {!report && !error && <p aria-live="polite">Loading…</p>}
      {report && (
        <>
          <p>
            {report.from} to {report.to}: {report.totals.turns} answers, {report.totals.total_tokens.toLocaleString()} tokens, cost {report.totals.cost}
            {limit && (limit.amount === null ? ' · no spend limit' : ` · limit ${limit.amount} per ${limit.period} (spent ${limit.spent})`)}
          </p>
          {days.length > 0 && (
            <ul className="usage-chart" aria-label="Tokens by day">
              {days.map((d) => (
                <li key={d.day}>
                  <span className="usage-day">{d.day}</span>
                  <span className="usage-bar" style={{ width: `${(d.tokens / max) * 100}%` }} aria-hidden="true" />
                  <span className="usage-n">{d.tokens.toLocaleString()} tokens</span>
                </li>
              ))}
            </ul>
          )}
        </>
      )}
    </section>
  );
}
