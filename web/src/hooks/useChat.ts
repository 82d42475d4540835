import type { Chat, ChatStream, LastError, Message } from '@chatd-edge/sdk';
import { useCallback, useEffect, useRef, useState } from 'react';
import { client, errorText } from '../api';
import { openChat, openChatAt, PAGE } from '../chat-data';

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
  /** Assistant messages of turns stopped by Stop (seen stopping in this view, or the chat's last turn was interrupted). */
  stopped: ReadonlySet<number>;
  /** Turns that failed, by the id of the last message before the failure: kept in the conversation, with Retry. */
  failures: readonly Failure[];
  loadOlder: () => Promise<void>;
  setChat: (c: Chat) => void;
  /** Marks the turn in progress as stopped by the reader (its answer is then marked "stopped"). */
  markStopping: () => void;
}

export interface Failure {
  afterId: number;
  error: LastError;
}

/**
 * One chat: its row, the newest page of history, and the SDK's resuming stream from the end of that page. The stream
 * reconnects by itself; `connection` tells the page when it is away ("reconnecting…"). With `focusId` (a search
 * result), the history starts at the page around that message instead.
 */
export function useChat(chatId: string, focusId: number | null = null): ChatModel {
  const [chat, setChat] = useState<Chat | null>(null);
  const [pages, setPages] = useState<readonly Message[]>([]);
  const [hasOlder, setHasOlder] = useState(false);
  const [loadingOlder, setLoadingOlder] = useState(false);
  const [connection, setConnection] = useState<Connection>('connecting');
  const [eventError, setEventError] = useState<LastError | null>(null);
  const [fatal, setFatal] = useState('');
  const [stream, setStream] = useState<ChatStream | null>(null);
  const [, setTick] = useState(0);
  const [stopped, setStopped] = useState<ReadonlySet<number>>(new Set());
  const [failures, setFailures] = useState<readonly Failure[]>([]);
  const stopping = useRef(false);
  const pagesRef = useRef(pages);
  pagesRef.current = pages;
  const lastIdRef = useRef(0);

  useEffect(() => {
    let s: ChatStream | null = null;
    let cancelled = false;
    const start = async () => {
      try {
        const [c, page] = focusId === null ? await openChat(chatId) : await openChatAt(chatId, focusId);
        if (cancelled) return;
        setChat(c);
        setPages(page.messages);
        const last = page.messages.at(-1);
        // The chat's last turn failed: its error stays under the message that started it.
        if (c.status === 'error' && c.last_error && last) setFailures([{ afterId: last.id, error: c.last_error }]);
        if (c.last_error?.kind === 'interrupted' && last?.role === 'assistant') setStopped(new Set([last.id]));
        // Opened at a message: older ones may be above the page around it (Load older finds out).
        setHasOlder(focusId === null ? page.messages.length === PAGE : page.messages.length > 0);
        lastIdRef.current = page.messages.at(-1)?.id ?? 0;
        s = client.stream(chatId, { afterId: lastIdRef.current });
        s.on('change', () => setTick((t) => t + 1));
        s.on('open', () => setConnection('live'));
        s.on('disconnect', () => setConnection('reconnecting'));
        s.on('error', (e) => setEventError(e.error));
        s.on('message', (e) => {
          lastIdRef.current = e.message.id;
          if (e.message.role === 'assistant' && stopping.current) {
            const id = e.message.id;
            setStopped((prev) => new Set(prev).add(id));
          }
        });
        s.on('status', (e) => {
          if (e.status.status === 'interrupting') stopping.current = true;
          if (e.status.status === 'waiting') stopping.current = false;
          if (e.status.status === 'error' && e.status.last_error) {
            const failure = { afterId: lastIdRef.current, error: e.status.last_error };
            setFailures((prev) => [...prev.filter((f) => f.afterId !== failure.afterId), failure]);
          }
          if (e.status.status === 'running') setEventError(null);
          setChat((prev) => (prev ? { ...prev, status: e.status.status, last_error: e.status.last_error ?? null } : prev));
        });
        // After an edit the stream's history is the whole truth: drop the REST pages (older ones load again on demand).
        s.on('full_refresh', (e) => {
          lastIdRef.current = e.messages.at(-1)?.id ?? 0;
          setFailures([]);
          setPages([]);
          setHasOlder(true);
        });
        s.on('close', () => {
          setConnection('closed');
          if (s?.error) setFatal(errorText(s.error)); // a 401 (session ended) also sends the shell to the login
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
  }, [chatId, focusId]);

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
    stopped,
    failures,
    loadOlder,
    setChat,
    markStopping: () => {
      stopping.current = true;
    },
  };
}

function mergeById(a: readonly Message[], b: readonly Message[]): Message[] {
  const byId = new Map<number, Message>();
  for (const m of a) byId.set(m.id, m);
  for (const m of b) byId.set(m.id, m);
  return [...byId.values()].sort((x, y) => x.id - y.id);
}
