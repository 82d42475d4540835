import type { Message, Part } from '@chatd-edge/sdk';
import { memo, useState } from 'react';
import { Markdown } from './Markdown';
import { ToolParts } from './ToolParts';

const textOfParts = (parts: readonly Part[] | readonly Message['content'][number][], type: 'text' | 'reasoning') =>
  parts
    .map((p) => (p.type === type && 'text' in p && typeof p.text === 'string' ? p.text : ''))
    .join('');

/** Reasoning, collapsed until the reader opens it. */
export function Reasoning({ text }: { text: string }) {
  if (!text) return null;
  return (
    <details className="reasoning">
      <summary>Reasoning</summary>
      <p>{text}</p>
    </details>
  );
}

interface Props {
  message: Message;
  busy: boolean;
  onEdit: (id: number, text: string) => Promise<boolean>;
}

/**
 * One durable message: user text (editable), or the assistant's Markdown with its reasoning and tool calls collapsed,
 * or a `tool` message's results (collapsed).
 */
export const MessageItem = memo(function MessageItem({ message, busy, onEdit }: Props) {
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
        <span>{label}</span>
        {message.role === 'user' && !editing && (
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
            <textarea value={draft} rows={3} onChange={(e) => setDraft(e.target.value)} />
          </label>
          <div className="row">
            <button type="submit" disabled={!draft.trim()}>
              Save and resend
            </button>
            <button type="button" onClick={() => setEditing(false)}>
              Cancel
            </button>
          </div>
        </form>
      ) : (
        <>
          <Reasoning text={reasoning} />
          {message.role === 'user' ? <p className="user-text">{text}</p> : <Markdown text={text} />}
          {message.role === 'assistant' && <ToolParts parts={message.content} />}
        </>
      )}
    </article>
  );
});
