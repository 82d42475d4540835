/**
 * The "Debug" drawer of a chat, for owners: the chat's debug runs (GET /chats/{id}/debug-runs), newest first, each
 * with its time, outcome, timings and attempts, and the request and response as kept (credentials redacted). Loaded
 * when opened; empty while the deployment's `debug_runs` setting is off (Admin → Deployment).
 */
import { ChatdError } from '@chatd-edge/sdk';
import { useState } from 'react';
import { client, errorText } from '../api';

interface Run {
  id: string;
  started_at: string;
  model_config_id: string | null;
  request: Record<string, unknown>;
  response: Record<string, unknown>;
  attempts: { at: string; status: 'ok' | 'error'; error?: string }[];
  timings: Record<string, number | null>;
}

function outcomeOf(r: Run): string {
  const err = r.response.error;
  if (err && typeof err === 'object' && 'kind' in err) return `error: ${String(err.kind)}`;
  const finish = r.response.finish_reason;
  return typeof finish === 'string' ? finish : 'ended';
}

export function DebugDrawer({ chatId }: { chatId: string }) {
  const [runs, setRuns] = useState<Run[] | null>(null);
  const [error, setError] = useState('');
  const load = async () => {
    try {
      const { data, response } = await client.raw.GET('/api/v2/chats/{id}/debug-runs', { params: { path: { id: chatId } } });
      if (!data) throw new ChatdError(response.status, `Debug runs answered ${response.status}.`);
      setRuns(data.runs);
      setError('');
    } catch (e) {
      setError(errorText(e));
    }
  };
  return (
    <details
      className="debug-drawer"
      onToggle={(e) => {
        if (e.currentTarget.open) void load();
      }}
    >
      <summary>Debug</summary>
      {error && (
        <p role="alert" className="error">
          {error}
        </p>
      )}
      {runs?.length === 0 && <p>No debug runs for this chat. An owner turns them on in Admin → Deployment (debug runs).</p>}
      {runs && runs.length > 0 && (
        <ol className="debug-runs" aria-label="Debug runs">
          {runs.map((r) => (
            <li key={r.id}>
              <details>
                <summary>
                  {new Date(r.started_at).toLocaleString()} · {outcomeOf(r)} · {r.timings.total_ms ?? '?'} ms · {r.attempts.length}{' '}
                  {r.attempts.length === 1 ? 'attempt' : 'attempts'}
                </summary>
                <pre>{JSON.stringify({ timings: r.timings, attempts: r.attempts, request: r.request, response: r.response }, null, 2)}</pre>
              </details>
            </li>
          ))}
        </ol>
      )}
    </details>
  );
}
