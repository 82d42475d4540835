import type { Chat } from '@chatd-edge/sdk';
import { useEffect, useState } from 'react';
import { client, errorText } from '../api';
import { Link } from './Link';

/** How often the list of chats shared with the reader is read again (a share or its end shows within this). */
const REFRESH_MS = 10_000;

/** "Shared with me": the chats others shared with the reader (directly or through a group), read-only. Hidden when none. */
export function SharedList({ activeId, version }: { activeId: string | null; version: number }) {
  const [chats, setChats] = useState<Chat[]>([]);
  const [error, setError] = useState('');
  useEffect(() => {
    let cancelled = false;
    const load = () =>
      client.listChats({ shared: 'true', limit: 200 }).then(
        (c) => {
          if (cancelled) return;
          setChats(c);
          setError('');
        },
        (e: unknown) => {
          if (!cancelled) setError(errorText(e));
        },
      );
    void load();
    const t = setInterval(() => void load(), REFRESH_MS);
    return () => {
      cancelled = true;
      clearInterval(t);
    };
  }, [version, activeId]);
  if (chats.length === 0 && !error) return null;
  return (
    <section aria-labelledby="shared-heading" className="chat-list shared-list">
      <h2 id="shared-heading">Shared with me</h2>
      {error && (
        <p role="alert" className="error">
          {error}
        </p>
      )}
      <ul className="rows">
        {chats.map((c) => (
          <li key={c.id} className={c.id === activeId ? 'active' : ''} data-chat-id={c.id}>
            <Link href={`/chats/${c.id}`} aria-current={c.id === activeId ? 'page' : undefined}>
              <span className="title">{c.title || 'Untitled chat'}</span>
            </Link>
          </li>
        ))}
      </ul>
    </section>
  );
}
