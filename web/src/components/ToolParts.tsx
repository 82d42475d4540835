import type { MessagePart, Part, PendingToolCall } from '@chatd-edge/sdk';
import { useState } from 'react';
import { errorText } from '../api';

/** JSON, indented, for a `<pre>` (rendered as text, never HTML). */
const pretty = (v: unknown): string => {
  if (v === undefined) return '';
  try {
    return JSON.stringify(v, null, 2);
  } catch {
    return '(not JSON)';
  }
};

const str = (v: unknown): string => (typeof v === 'string' ? v : '');

/** The tool calls and tool results among a message's (or the streaming step's) parts, each collapsed. */
export function ToolParts({ parts }: { parts: readonly (Part | MessagePart)[] }) {
  const tools = parts.filter((p) => p.type === 'tool_call' || p.type === 'tool_result');
  if (tools.length === 0) return null;
  return (
    <>
      {tools.map((p, i) => {
        const id = str('tool_call_id' in p ? p.tool_call_id : '');
        const name = str('name' in p ? p.name : '');
        if (p.type === 'tool_call') {
          return (
            <details key={`c${id}${i}`} className="tool tool-call" data-tool-call-id={id}>
              <summary>Tool call: {name}</summary>
              <pre>{pretty('args' in p ? p.args : undefined)}</pre>
            </details>
          );
        }
        const isError = 'is_error' in p && p.is_error === true;
        return (
          <details key={`r${id}${i}`} className={`tool tool-result${isError ? ' tool-error' : ''}`} data-tool-call-id={id}>
            <summary>
              Tool result: {name}
              {isError && <span className="error"> (error)</span>}
            </summary>
            <pre>{pretty('result' in p ? p.result : undefined)}</pre>
          </details>
        );
      })}
    </>
  );
}

interface PendingProps {
  calls: readonly PendingToolCall[];
  decide: (toolCallId: string, decision: 'approve' | 'deny', reason?: string) => Promise<void>;
}

/**
 * The tool calls waiting for the owner's decision (status `requires_action`): Approve, or Deny with an optional reason
 * the model is told.
 */
export function PendingToolCalls({ calls, decide }: PendingProps) {
  const [working, setWorking] = useState<string | null>(null);
  const [error, setError] = useState('');
  const [reasons, setReasons] = useState<Record<string, string>>({});
  if (calls.length === 0) return null;
  const onDecide = async (id: string, decision: 'approve' | 'deny') => {
    setWorking(id);
    setError('');
    try {
      await decide(id, decision, decision === 'deny' ? reasons[id]?.trim() : undefined);
    } catch (e) {
      setError(errorText(e));
    } finally {
      setWorking(null);
    }
  };
  return (
    <section className="pending-tools" aria-label="Tool calls waiting for approval">
      <ul>
        {calls.map((c) => (
          <li key={c.tool_call_id} data-tool-call-id={c.tool_call_id}>
            <div>
              <strong>{c.name}</strong> <span className="muted">on {c.server}</span>
            </div>
            <pre>{pretty(c.args)}</pre>
            <div className="row">
              <button type="button" disabled={working !== null} aria-label={`Approve ${c.name}`} onClick={() => void onDecide(c.tool_call_id, 'approve')}>
                Approve
              </button>
              <button type="button" className="danger" disabled={working !== null} aria-label={`Deny ${c.name}`} onClick={() => void onDecide(c.tool_call_id, 'deny')}>
                Deny
              </button>
              <label className="inline grow">
                <span className="visually-hidden">Reason for denying {c.name} (optional)</span>
                <input
                  placeholder="Reason if you deny (optional)"
                  aria-label={`Reason for denying ${c.name} (optional)`}
                  maxLength={2000}
                  value={reasons[c.tool_call_id] ?? ''}
                  onChange={(e) => setReasons({ ...reasons, [c.tool_call_id]: e.target.value })}
                />
              </label>
            </div>
          </li>
        ))}
      </ul>
      {error && (
        <p role="alert" className="error tool-decision-error">
          {error}
        </p>
      )}
    </section>
  );
}
