import type { Chat, ChatStream, LastError, Message } from '@chatd-edge/sdk';
import { useCallback, useEffect, useRef, useState } from 'react';
import { client, errorText } from '../api';
import { openChat, PAGE } from '../chat-data';


export type Connection = 'connecting' | 'live' | 'reconnecting' | 'closed';

export interface ChatModel {
  chat: Chat | null;
  /** Durable history in id order: the pages read over REST, then what the stream brought after them. */
  messages: readonly Message[];
  stream: ChatStream | null;
  connection: Connection;
  hasOlder: boolean;
  loadingOlder: boolean;
  /** The last `error` event of the stream (a failed turn), or the status' `last_error`. */
  lastError: LastError | null;
  /** Loading failed, or the stream ended for good (chat deleted, signed out). */
  fatal: string;
  loadOlder: () => Promise<void>;
  setChat: (c: Chat) => void;
}

/**
 * One chat: its row, the newest page of history, and the SDK's resuming stream from the end of that page. The stream
 * reconnects by itself; `connection` tells the page when it is away ("reconnecting…").
 */
export function useChat(chatId: string): ChatModel {
  const [chat, setChat] = useState<Chat | null>(null);
  const [pages, setPages] = useState<readonly Message[]>([]);
  const [hasOlder, setHasOlder] = useState(false);
  const [loadingOlder, setLoadingOlder] = useState(false);
  const [connection, setConnection] = useState<Connection>('connecting');
  const [eventError, setEventError] = useState<LastError | null>(null);
  const [fatal, setFatal] = useState('');
  const [stream, setStream] = useState<ChatStream | null>(null);
  const [, setTick] = useState(0);
  const pagesRef = useRef(pages);
  pagesRef.current = pages;

  useEffect(() => {
    let s: ChatStream | null = null;
    let cancelled = false;
    const start = async () => {
      try {
        const [c, page] = await openChat(chatId);
        if (cancelled) return;
        setChat(c);
        setPages(page.messages);
        setHasOlder(page.messages.length === PAGE);
        s = client.stream(chatId, { afterId: page.messages.at(-1)?.id ?? 0 });
        s.on('change', () => setTick((t) => t + 1));
        s.on('open', () => setConnection('live'));
        s.on('disconnect', () => setConnection('reconnecting'));
        s.on('error', (e) => setEventError(e.error));
        s.on('status', (e) => {
          if (e.status.status === 'running') setEventError(null);
          setChat((prev) => (prev ? { ...prev, status: e.status.status, last_error: e.status.last_error ?? null } : prev));
        });
        // After an edit the stream's history is the whole truth: drop the REST pages (older ones load again on demand).
        s.on('full_refresh', () => {
          setPages([]);
          setHasOlder(true);
        });
        s.on('close', () => {
          setConnection('closed');
          if (s?.error) setFatal(s.error.message);
        });
        setStream(s);
      } catch (e) {
        if (!cancelled) setFatal(errorText(e));
      }
    };
    void start();
    return () => {
      cancelled = true;
      void s?.close();
    };
  }, [chatId]);

  const loadOlder = useCallback(async () => {
    const first = pagesRef.current[0] ?? stream?.messages[0];
    if (!first) {
      setHasOlder(false);
      return;
    }
    setLoadingOlder(true);
    try {
      const page = await client.listMessages(chatId, { before_id: first.id, limit: PAGE });
      setPages((prev) => [...page.messages, ...prev]);
      setHasOlder(page.messages.length === PAGE);
    } catch (e) {
      setFatal(errorText(e));
    } finally {
      setLoadingOlder(false);
    }
  }, [chatId, stream]);

  const live = stream?.messages ?? [];
  const lastPaged = pages.at(-1)?.id ?? 0;
  const messages = live.length && live[0] && live[0].id <= lastPaged ? mergeById(pages, live) : [...pages, ...live];
  const status = stream?.status;
  return {
    chat,
    messages,
    stream,
    connection,
    hasOlder,
    loadingOlder,
    lastError: eventError ?? status?.last_error ?? chat?.last_error ?? null,
    fatal,
    loadOlder,
    setChat,
  };
}

function mergeById(a: readonly Message[], b: readonly Message[]): Message[] {
  const byId = new Map<number, Message>();
  for (const m of a) byId.set(m.id, m);
  for (const m of b) byId.set(m.id, m);
  return [...byId.values()].sort((x, y) => x.id - y.id);
}
