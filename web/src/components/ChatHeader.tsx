import type { Chat } from '@chatd-edge/sdk';
import { type SyntheticEvent, useState } from 'react';
import { client, errorText } from '../api';
import { Link } from './Link';
import { ShareDialog } from './ShareDialog';

/** The chat's title (renamable), labels and archive switch. */
export function ChatHeader({ chat, onSaved }: { chat: Chat; onSaved: (c: Chat) => void }) {
  const [editing, setEditing] = useState(false);
  const [title, setTitle] = useState(chat.title);
  const [error, setError] = useState('');
  const [sharing, setSharing] = useState(false);
  const viewer = chat.access === 'viewer';
  const save = async (body: { title?: string; archived?: boolean }) => {
    try {
      onSaved(await client.updateChat(chat.id, body));
      setEditing(false);
      setError('');
    } catch (e) {
      setError(errorText(e));
    }
  };
  const submit = (e: SyntheticEvent) => {
    e.preventDefault();
    void save({ title });
  };
  return (
    <header className="chat-head">
      {editing ? (
        <form onSubmit={submit} className="row">
          <label>
            Title
            <input
              value={title}
              autoFocus
              onChange={(e) => setTitle(e.target.value)}
              onKeyDown={(e) => {
                if (e.key === 'Escape') setEditing(false);
              }}
              maxLength={256}
            />
          </label>
          <button type="submit">Save</button>
          <button type="button" className="secondary" onClick={() => setEditing(false)}>
            Cancel
          </button>
        </form>
      ) : (
        <h1>{chat.title || 'Untitled chat'}</h1>
      )}
      <div className="row">
        <Link href="/" className="mobile-only">
          ← Chats
        </Link>
        {viewer && <span className="badge">shared with you · read-only</span>}
        {!editing && !viewer && (
          <button
            type="button"
            className="small"
            onClick={() => {
              setTitle(chat.title);
              setEditing(true);
            }}
          >
            Rename
          </button>
        )}
        {!viewer && (
          <button type="button" className="small" onClick={() => void save({ archived: !chat.archived })}>
            {chat.archived ? 'Unarchive' : 'Archive'}
          </button>
        )}
        {!viewer && (
          <button type="button" className="small" onClick={() => setSharing(true)}>
            Share…
          </button>
        )}
        {Object.entries(chat.labels).map(([k, v]) => (
          <span key={k} className="label">
            {v ? `${k}: ${v}` : k}
          </span>
        ))}
      </div>
      {error && (
        <p role="alert" className="error">
          {error}
        </p>
      )}
      {sharing && <ShareDialog chatId={chat.id} title={chat.title || 'Untitled chat'} onClose={() => setSharing(false)} />}
    </header>
  );
}
