import type { Chat, ChatStatus } from '@chatd-edge/sdk';
import { useCallback, useEffect, useRef, useState } from 'react';
import { client, errorText } from '../api';
import { prefetchChat } from '../chat-data';
import { navigate } from '../router';
import { useConfirm } from './Confirm';
import { Link } from './Link';
import { ChatSearch } from './ChatSearch';
import { ExportItems } from './ConversationTools';
import { StatusBadge } from './StatusBadge';

/** Chats per page of the list ("Load more" adds the next page: no wall at 100). */
export const LIST_PAGE = 50;
/** How often the rows other than the open chat's are read again (the open chat's status comes live from its stream). */
const REFRESH_MS = 5000;

interface Props {
  version: number;
  activeId: string | null;
  /** The open chat's status, live from its stream: shown on its row at once. */
  live: { id: string; status: ChatStatus } | null;
  onChanged: () => void;
}

/**
 * The user's chats, most recently active first: compact rows (title, status badge) with a menu (rename, archive,
 * delete; later share and export: the "row-menu" slot of docs/ui.md), paged with "Load more", and the search slot.
 */
export function ChatList({ version, activeId, live, onChanged }: Props) {
  const [archived, setArchived] = useState(false);
  const [chats, setChats] = useState<Chat[] | null>(null);
  const [shown, setShown] = useState(LIST_PAGE);
  const [hasMore, setHasMore] = useState(false);
  const [loadingMore, setLoadingMore] = useState(false);
  const [error, setError] = useState('');
  const [menu, setMenu] = useState<string | null>(null);
  const [renaming, setRenaming] = useState<{ id: string; title: string } | null>(null);
  const { ask, dialog } = useConfirm();
  const shownRef = useRef(shown);
  shownRef.current = shown;

  // Every loaded row is read again, in one request (up to 200 rows a page; more in pages of 200).
  const load = useCallback(async () => {
    try {
      // One row more than shown: whether there is more to load.
      const want = shownRef.current + 1;
      const rows: Chat[] = [];
      for (let offset = 0; offset < want; offset += 200) {
        const limit = Math.min(200, want - offset);
        const page = await client.listChats({ archived: archived ? 'true' : 'false', limit, offset });
        rows.push(...page);
        if (page.length < limit) break;
      }
      setHasMore(rows.length > shownRef.current);
      setChats(rows.slice(0, shownRef.current));
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
  }, [load, version, shown]);

  const more = async () => {
    setLoadingMore(true);
    setShown((n) => n + LIST_PAGE);
    shownRef.current += LIST_PAGE;
    await load();
    setLoadingMore(false);
  };

  const update = async (c: Chat, body: { title?: string; archived?: boolean }) => {
    try {
      await client.updateChat(c.id, body);
      setRenaming(null);
      onChanged();
      await load();
    } catch (e) {
      setError(errorText(e));
    }
  };
  const remove = async (c: Chat) => {
    const title = c.title || 'Untitled chat';
    if (!(await ask(`Delete "${title}"?`, <p>The chat and all its messages are deleted for good.</p>, 'Delete for good'))) return;
    try {
      await client.deleteChat(c.id);
      if (c.id === activeId) navigate('/');
      await load();
    } catch (e) {
      setError(errorText(e));
    }
  };

  // The menu closes on Escape or a click elsewhere.
  useEffect(() => {
    if (!menu) return;
    const close = (e: Event) => {
      if (e instanceof KeyboardEvent && e.key !== 'Escape') return;
      if (e instanceof MouseEvent && e.target instanceof Element && e.target.closest('.row-menu')) return;
      setMenu(null);
    };
    document.addEventListener('keydown', close);
    document.addEventListener('click', close);
    return () => {
      document.removeEventListener('keydown', close);
      document.removeEventListener('click', close);
    };
  }, [menu]);

  return (
    <section aria-labelledby="chats-heading" className="chat-list">
      <div className="row between">
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
      <ChatSearch activeId={activeId} />
      {dialog}
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
        <ul className="rows">
          {chats.map((c) => {
            const title = c.title || 'Untitled chat';
            const status = live && live.id === c.id ? live.status : c.status;
            return (
              <li key={c.id} className={c.id === activeId ? 'active' : ''} data-chat-id={c.id}>
                {renaming?.id === c.id ? (
                  <form
                    className="rename"
                    onSubmit={(e) => {
                      e.preventDefault();
                      void update(c, { title: renaming.title });
                    }}
                  >
                    <label className="visually-hidden" htmlFor={`rename-${c.id}`}>
                      New title
                    </label>
                    <input
                      id={`rename-${c.id}`}
                      autoFocus
                      value={renaming.title}
                      maxLength={256}
                      onChange={(e) => setRenaming({ id: c.id, title: e.target.value })}
                      onKeyDown={(e) => {
                        if (e.key === 'Escape') setRenaming(null);
                      }}
                    />
                  </form>
                ) : (
                  <Link href={`/chats/${c.id}`} aria-current={c.id === activeId ? 'page' : undefined} onClick={() => prefetchChat(c.id, c)}>
                    <span className="title">{title}</span>
                    {status !== 'waiting' && <StatusBadge status={status} />}
                  </Link>
                )}
                <div className="row-menu">
                  <button
                    type="button"
                    className="icon"
                    aria-label={`Actions for ${title}`}
                    aria-haspopup="menu"
                    aria-expanded={menu === c.id}
                    onClick={() => setMenu(menu === c.id ? null : c.id)}
                  >
                    ⋯
                  </button>
                  {menu === c.id && (
                    <ul role="menu" aria-label={`Actions for ${title}`}>
                      <li role="none">
                        <button
                          type="button"
                          role="menuitem"
                          autoFocus
                          onClick={() => {
                            setMenu(null);
                            setRenaming({ id: c.id, title: c.title });
                          }}
                        >
                          Rename
                        </button>
                      </li>
                      <li role="none">
                        <button
                          type="button"
                          role="menuitem"
                          onClick={() => {
                            setMenu(null);
                            void update(c, { archived: !c.archived });
                          }}
                        >
                          {c.archived ? 'Unarchive' : 'Archive'}
                        </button>
                      </li>
                      {/* Slot "row-menu": share and export add their items here. */}
                      <ExportItems chat={c} close={() => setMenu(null)} onError={setError} />
                      <li role="none">
                        <button
                          type="button"
                          role="menuitem"
                          className="danger"
                          onClick={() => {
                            setMenu(null);
                            void remove(c);
                          }}
                        >
                          Delete…
                        </button>
                      </li>
                    </ul>
                  )}
                </div>
              </li>
            );
          })}
        </ul>
      )}
      {hasMore && (
        <button type="button" className="secondary load-more" onClick={() => void more()} disabled={loadingMore}>
          {loadingMore ? 'Loading…' : 'Load more chats'}
        </button>
      )}
    </section>
  );
}
