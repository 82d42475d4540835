import type { Chat, SearchResult } from '@chatd-edge/sdk';
import { useEffect, useRef, useState, type ReactNode } from 'react';
import { client, errorText } from '../api';
import { Link } from './Link';

/**
 * Whether this server searches chats (`GET /chats?q=`, the search feature): read once from its OpenAPI document. A
 * server without it would ignore `q` and list every chat, which is not a search: the box is then not shown.
 */
let searchable: Promise<boolean> | null = null;
function serverSearches(): Promise<boolean> {
  searchable ??= fetch('/api/v2/openapi.json')
    .then((r) => (r.ok ? (r.json() as Promise<unknown>) : null))
    .then((doc) => {
      const get = (doc as { paths?: Record<string, { get?: { parameters?: { name?: string }[] } }> } | null)?.paths?.['/api/v2/chats']?.get;
      return (get?.parameters ?? []).some((p) => p.name === 'q');
    })
    .catch(() => false);
  return searchable;
}

const ENTITIES: Record<string, string> = { '&amp;': '&', '&lt;': '<', '&gt;': '>', '&quot;': '"', '&#39;': "'" };
const unescape = (s: string) => s.replace(/&(amp|lt|gt|quot|#39);/g, (e) => ENTITIES[e] ?? e);

/** A snippet (HTML-escaped text whose matches are in <mark>): rendered as text and <mark> elements, never as HTML. */
function Snippet({ html }: { html: string }) {
  const parts = html.split(/(<mark>|<\/mark>)/);
  let marked = false;
  const out: ReactNode[] = [];
  parts.forEach((p, i) => {
    if (p === '<mark>') marked = true;
    else if (p === '</mark>') marked = false;
    else if (p) out.push(marked ? <mark key={i}>{unescape(p)}</mark> : unescape(p));
  });
  return <span className="search-snippet">{out}</span>;
}

/**
 * The search slot of the sidebar: a box (Ctrl/Cmd+K focuses it) whose results replace the list while it has text.
 * Shown only when the server searches (`GET /chats?q=`); hidden again if the server refuses `q` (400).
 */
export function ChatSearch({ activeId }: { activeId: string | null }) {
  const [enabled, setEnabled] = useState(false);
  const [q, setQ] = useState('');
  const [results, setResults] = useState<Chat[] | null>(null);
  const [hits, setHits] = useState<SearchResult[]>([]);
  const [error, setError] = useState('');
  const box = useRef<HTMLInputElement>(null);

  useEffect(() => {
    let on = true;
    void serverSearches().then((s) => {
      if (on) setEnabled(s);
    });
    return () => {
      on = false;
    };
  }, []);

  useEffect(() => {
    if (!enabled) return;
    const key = (e: KeyboardEvent) => {
      if (e.key.toLowerCase() === 'k' && (e.ctrlKey || e.metaKey)) {
        e.preventDefault();
        box.current?.focus();
      }
    };
    document.addEventListener('keydown', key);
    return () => document.removeEventListener('keydown', key);
  }, [enabled]);

  useEffect(() => {
    if (!q.trim()) {
      setResults(null);
      setHits([]);
      return;
    }
    let on = true;
    const t = setTimeout(() => {
      // `q` is the search feature's parameter: not in this SDK's types until that feature lands.
      const query = { q, limit: 50 } as Parameters<typeof client.listChats>[0];
      client.listChats(query).then(
        (rows) => {
          if (on) setResults(rows);
        },
        (e: unknown) => {
          if (!on) return;
          if (e instanceof Error && 'status' in e && e.status === 400) setEnabled(false);
          else setError(errorText(e));
        },
      );
      // The matching messages, best first: each opens its chat at that message.
      client.searchChats({ q, limit: 20 }).then(
        (r) => {
          if (on) setHits(r.results);
        },
        () => {
          if (on) setHits([]);
        },
      );
    }, 200);
    return () => {
      on = false;
      clearTimeout(t);
    };
  }, [q]);

  if (!enabled) return null;
  return (
    <div className="search" role="search">
      <label className="visually-hidden" htmlFor="chat-search">
        Search chats
      </label>
      <input
        id="chat-search"
        ref={box}
        type="search"
        placeholder="Search chats (Ctrl+K)"
        value={q}
        onChange={(e) => setQ(e.target.value)}
        onKeyDown={(e) => {
          if (e.key === 'Escape') setQ('');
        }}
      />
      {error && <p className="error">{error}</p>}
      {results && (
        <ul className="rows search-results" aria-label="Search results">
          {results.length === 0 && <li className="muted">No chat matches.</li>}
          {results.map((c) => (
            <li key={c.id} className={c.id === activeId ? 'active' : ''}>
              <Link href={`/chats/${c.id}`}>{c.title || 'Untitled chat'}</Link>
            </li>
          ))}
        </ul>
      )}
      {results && hits.length > 0 && (
        <ul className="rows search-results search-messages" aria-label="Matching messages">
          {hits.map((h) => (
            <li key={h.message_id}>
              <Link href={`/chats/${h.chat_id}?m=${h.message_id}`}>
                {h.chat_title || 'Untitled chat'}
                <Snippet html={h.snippet} />
              </Link>
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}
