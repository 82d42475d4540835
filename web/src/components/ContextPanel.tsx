import type { ChatStream, components } from '@chatd-edge/sdk';
import { useCallback, useEffect, useState } from 'react';
import { client, errorText } from '../api';

type ChatContext = components['schemas']['ChatContext'];

/**
 * The context the chat pinned from its agent (instruction files, skills, ...): a "changed" marker when the agent's
 * context moved on since, and a button to pin the new one (`PUT /chats/{id}/context`).
 */
export function ContextPanel({ chatId, stream }: { chatId: string; stream: ChatStream | null }) {
  const [ctx, setCtx] = useState<ChatContext | null>(null);
  const [error, setError] = useState('');
  const [busy, setBusy] = useState(false);

  const load = useCallback(async () => {
    try {
      setCtx(await client.context(chatId));
      setError('');
    } catch (e) {
      setError(errorText(e));
    }
  }, [chatId]);

  useEffect(() => {
    void load();
    return stream?.on('context_dirty', () => void load());
  }, [load, stream]);

  const repin = async () => {
    setBusy(true);
    try {
      setCtx(await client.repinContext(chatId));
    } catch (e) {
      setError(errorText(e));
    } finally {
      setBusy(false);
    }
  };

  return (
    <details className="context" open={ctx?.dirty}>
      <summary>
        Pinned context ({ctx?.resources.length ?? '…'})
        {ctx?.dirty && <span className="badge status-error dirty">changed</span>}
      </summary>
      {error && (
        <p role="alert" className="error">
          {error}
        </p>
      )}
      {ctx && (
        <>
          <ul>
            {ctx.resources.map((r) => (
              <li key={r.source}>
                <code>{r.source}</code> {r.body_kind} · {r.status}
              </li>
            ))}
          </ul>
          {ctx.dirty && (
            <>
              <p>
                The agent&apos;s context changed since this chat pinned it:{' '}
                {ctx.changes.map((c) => `${c.source} ${c.change}`).join(', ')}.
              </p>
              <button type="button" onClick={() => void repin()} disabled={busy}>
                Re-pin the current context
              </button>
            </>
          )}
        </>
      )}
    </details>
  );
}
