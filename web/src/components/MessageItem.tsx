import type { Message, Part } from '@chatd-edge/sdk';
import { memo, useState } from 'react';
import { CopyButton } from './Confirm';
import { FileParts } from './FileParts';
import { Markdown } from './Markdown';
import { MessageTools } from './ConversationTools';
import { ToolParts } from './ToolParts';

export const textOfParts = (parts: readonly Part[] | readonly Message['content'][number][], type: 'text' | 'reasoning') =>
  parts
    .map((p) => (p.type === type && 'text' in p && typeof p.text === 'string' ? p.text : ''))
    .join('');

/** Reasoning, collapsed until the reader opens it; "thinking…" while the model reasons and has written nothing yet. */
export function Reasoning({ text, thinking = false }: { text: string; thinking?: boolean }) {
  if (!text && !thinking) return null;
  return (
    <details className="reasoning">
      <summary>{thinking ? <span className="thinking">thinking…</span> : 'Reasoning'}</summary>
      <p>{text}</p>
    </details>
  );
}

interface Props {
  message: Message;
  busy: boolean;
  /** The name of the model that wrote an assistant message. */
  model: string;
  stopped: boolean;
  onEdit: (id: number, text: string) => Promise<boolean>;
  /** The chat's last answer (Regenerate shows on it). */
  last?: boolean;
}

/**
 * One durable message: user text (editable: Escape cancels), or the assistant's Markdown with the model that wrote it,
 * its reasoning and tool calls collapsed, "stopped" when the reader stopped it; Copy on both. Slot "message-actions":
 * regenerate and fork add their buttons beside Copy.
 */
export const MessageItem = memo(function MessageItem({ message, busy, model, stopped, onEdit, last = false }: Props) {
  const [editing, setEditing] = useState(false);
  const [draft, setDraft] = useState('');
  const text = textOfParts(message.content, 'text');
  const reasoning = textOfParts(message.content, 'reasoning');
  if (message.role === 'system') return null;
  if (message.role === 'tool') {
    return (
      <article className="msg msg-tool" data-message-id={message.id} aria-label="Tool message">
        <ToolParts parts={message.content} />
      </article>
    );
  }
  const label = message.role === 'user' ? 'You' : 'Assistant';
  return (
    <article className={`msg msg-${message.role}`} data-message-id={message.id} aria-label={`${label} message`}>
      <header className="msg-head">
        <span>
          {label}
          {message.role === 'assistant' && model && <span className="model-name"> · {model}</span>}
          {stopped && <span className="badge stopped">stopped</span>}
        </span>
        {!editing && (
          <span className="msg-actions">
            {text && <CopyButton text={text} />}
            {message.role === 'user' && (
              <button
                type="button"
                className="small"
                disabled={busy}
                onClick={() => {
                  setDraft(text);
                  setEditing(true);
                }}
              >
                Edit
              </button>
            )}
            <MessageTools message={message} busy={busy} last={last} />
          </span>
        )}
      </header>
      {editing ? (
        <form
          className="edit"
          onSubmit={(e) => {
            e.preventDefault();
            void onEdit(message.id, draft).then((ok) => {
              if (ok) setEditing(false);
            });
          }}
        >
          <label>
            Edit message
            <textarea
              value={draft}
              rows={3}
              autoFocus
              onChange={(e) => setDraft(e.target.value)}
              onKeyDown={(e) => {
                if (e.key === 'Escape') setEditing(false);
              }}
            />
          </label>
          <div className="row">
            <button type="submit" disabled={!draft.trim()}>
              Save and resend
            </button>
            <button type="button" className="secondary" onClick={() => setEditing(false)}>
              Cancel
            </button>
          </div>
        </form>
      ) : (
        <>
          <Reasoning text={reasoning} />
          {message.role === 'user' ? text && <p className="user-text">{text}</p> : <Markdown text={text} />}
          <FileParts parts={message.content} />
          {message.role === 'assistant' && <ToolParts parts={message.content} />}
        </>
      )}
    </article>
  );
});
