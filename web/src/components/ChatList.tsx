import type { Chat } from '@chatd-edge/sdk';
import { useCallback, useEffect, useState } from 'react';
import { client, errorText } from '../api';
import { prefetchChat } from '../chat-data';
import { navigate } from '../router';
import { Link } from './Link';
import { StatusBadge } from './StatusBadge';

/** How often the list asks for its chats again, so statuses (running → waiting) stay current. */
const REFRESH_MS = 3000;

/** The user's chats, newest first: archived toggle, title, labels, status (refreshed), delete. */
export function ChatList({ version, activeId }: { version: number; activeId: string | null }) {
  const [archived, setArchived] = useState(false);
  const [chats, setChats] = useState<Chat[] | null>(null);
  const [error, setError] = useState('');
  const [confirming, setConfirming] = useState<string | null>(null);

  const load = useCallback(async () => {
    try {
      setChats(await client.listChats({ archived: archived ? 'true' : 'false', limit: 100 }));
      setError('');
    } catch (e) {
      setError(errorText(e));
    }
  }, [archived]);

  useEffect(() => {
    void load();
    const t = setInterval(() => void load(), REFRESH_MS);
    return () => {
      clearInterval(t);
    };
  }, [load, version]);

  const remove = async (id: string) => {
    try {
      await client.deleteChat(id);
      setConfirming(null);
      if (id === activeId) navigate('/');
      await load();
    } catch (e) {
      setError(errorText(e));
    }
  };

  return (
    <section aria-labelledby="chats-heading" className="chat-list">
      <div className="row">
        <h2 id="chats-heading">Chats</h2>
        <label className="toggle">
          <input
            type="checkbox"
            checked={archived}
            onChange={(e) => {
              setArchived(e.target.checked);
              setChats(null);
            }}
          />
          Archived
        </label>
      </div>
      {error && (
        <p role="alert" className="error">
          {error}
        </p>
      )}
      {chats === null ? (
        <p aria-live="polite">Loading…</p>
      ) : chats.length === 0 ? (
        <p className="muted">{archived ? 'No archived chats.' : 'No chats yet.'}</p>
      ) : (
        <ul>
          {chats.map((c) => (
            <li key={c.id} className={c.id === activeId ? 'active' : ''} data-chat-id={c.id}>
              <Link href={`/chats/${c.id}`} aria-current={c.id === activeId ? 'page' : undefined} onClick={() => prefetchChat(c.id, c)}>
                <span className="title">{c.title || 'Untitled chat'}</span>
                <StatusBadge status={c.status} />
              </Link>
              {Object.keys(c.labels).length > 0 && (
                <ul className="labels" aria-label="Labels">
                  {Object.entries(c.labels).map(([k, v]) => (
                    <li key={k}>{v ? `${k}: ${v}` : k}</li>
                  ))}
                </ul>
              )}
              {confirming === c.id ? (
                <span className="confirm">
                  <button type="button" className="danger" onClick={() => void remove(c.id)}>
                    Delete for good
                  </button>
                  <button type="button" onClick={() => setConfirming(null)}>
                    Keep
                  </button>
                </span>
              ) : (
                <button type="button" className="small" aria-label={`Delete chat ${c.title || 'Untitled chat'}`} onClick={() => setConfirming(c.id)}>
                  Delete
                </button>
              )}
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}
