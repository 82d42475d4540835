import { type SyntheticEvent, useEffect, useState } from 'react';
import { client, errorText } from '../api';
import { ErrorLine } from './ErrorLine';

/** Deployment settings: retention, auto-archive, the system prompt of new chats. */
export function Deployment() {
  const [retention, setRetention] = useState<number | null>(null);
  const [autoArchive, setAutoArchive] = useState<number | null>(null);
  const [prompt, setPrompt] = useState<string | null>(null);
  const [error, setError] = useState('');
  const [saved, setSaved] = useState('');

  useEffect(() => {
    Promise.all([client.retentionDays(), client.autoArchiveDays(), client.systemPrompt()]).then(
      ([r, a, p]) => {
        setRetention(r.retention_days);
        setAutoArchive(a.auto_archive_days);
        setPrompt(p.system_prompt);
      },
      (e: unknown) => setError(errorText(e)),
    );
  }, []);

  const save = (what: string, f: () => Promise<unknown>) => (e: SyntheticEvent) => {
    e.preventDefault();
    setError('');
    setSaved('');
    f().then(
      () => setSaved(`${what} saved.`),
      (err: unknown) => setError(errorText(err)),
    );
  };

  if (retention === null || autoArchive === null || prompt === null) return error ? <ErrorLine error={error} /> : <p>Loading…</p>;
  return (
    <section aria-labelledby="deployment-heading">
      <h2 id="deployment-heading">Deployment</h2>
      <ErrorLine error={error} />
      {saved && <p role="status">{saved}</p>}
      <form className="row wrap" onSubmit={save('Retention', () => client.setRetentionDays({ retention_days: retention }))}>
        <label>
          Delete archived chats after (days, 0 = never)
          <input type="number" min={0} value={retention} onChange={(e) => setRetention(Number(e.target.value))} />
        </label>
        <button type="submit">Save retention</button>
      </form>
      <form className="row wrap" onSubmit={save('Auto-archive', () => client.setAutoArchiveDays({ auto_archive_days: autoArchive }))}>
        <label>
          Archive chats idle for (days, 0 = off)
          <input type="number" min={0} value={autoArchive} onChange={(e) => setAutoArchive(Number(e.target.value))} />
        </label>
        <button type="submit">Save auto-archive</button>
      </form>
      <form onSubmit={save('System prompt', () => client.setSystemPrompt({ system_prompt: prompt }))}>
        <label>
          System prompt of new chats
          <textarea rows={4} value={prompt} onChange={(e) => setPrompt(e.target.value)} />
        </label>
        <button type="submit">Save system prompt</button>
      </form>
    </section>
  );
}
