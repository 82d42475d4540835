/**
 * What a chat's object holds of its chat: the row (shown with the status of a turn ending that waits in the outbox),
 * the bounded cache of its newest durable messages, and its queue. Reads go to memory first and to Postgres (one
 * statement) when memory cannot answer; anything may be dropped (`reset`) and is then reloaded.
 */
import type { MessagePageQuery, StreamEvent } from '../../functions/core/room-api';
import { Chat, type LastError, type Message, type QueuedMessage, type TitleSource } from '../../functions/core/chats';
import { NO_GRANTS, type ChatGrants } from '../../functions/core/access';
import { MessageCache } from './message-cache';
import type { ChatStore } from './chat-store';
import type { Outbox } from './outbox';
import type { StreamHub } from './stream-hub';
import type { FinishEntry, TurnPart } from './turn';

export const INTERRUPTED: LastError = {
  kind: 'interrupted',
  message: 'The turn was interrupted before it finished (the chat runner restarted). Send the message again to retry.',
};
export const DB_WAIT: LastError = {
  kind: 'database_unavailable',
  message: 'The database is unavailable: the answer is kept and will be saved as soon as the database answers again.',
};

/** A chat kept in storage; one stored before tools has no `pending_tool_calls` (none were pending). */
const StoredChat = Chat.extend({
  pending_tool_calls: Chat.shape.pending_tool_calls.default([]),
  forked_from: Chat.shape.forked_from.default(null),
  access: Chat.shape.access.default('owner'),
});

/** Reads a chat row kept in the object's key-value storage; null when absent or not a chat. */
export function storedChat(kv: SyncKvStorage, key: string): Chat | null {
  const raw = kv.get(key);
  if (typeof raw !== 'string') return null;
  try {
    // Kept as the API shows it (the outbox's snapshot, the first answer of a keyed creation).
    const parsed = StoredChat.safeParse(JSON.parse(raw));
    return parsed.success ? parsed.data : null;
  } catch {
    return null;
  }
}

export interface StateDeps {
  chatId: () => string;
  store: ChatStore;
  hub: StreamHub;
  outbox: Outbox;
  kv: SyncKvStorage;
}

export class ChatState {
  private chat: Chat | null = null;
  /** The chat's viewer grants, loaded with the row (none while the row comes from the outbox's snapshot). */
  private grantsHeld: ChatGrants = NO_GRANTS;
  readonly cache = new MessageCache(256);
  private queue: QueuedMessage[] | null = null;
  /** A finished turn whose write waits in the outbox: its parts are still shown to sockets that connect. */
  held: FinishEntry | null = null;
  /** Where the title came from (loaded with the row; null until then): the title model replaces only 'first_words'. */
  titleSource: TitleSource | null = null;
  /** The chat was deleted: everything answers as not found. */
  gone = false;
  readonly counters = { cacheCatchups: 0, dbCatchups: 0, fullRefreshes: 0, historyReads: 0, cachePages: 0, dbPages: 0 };

  constructor(
    private readonly deps: StateDeps,
    private readonly transient: (e: unknown) => boolean,
  ) {}

  /**
   * Forget what may be stale; the next read reloads it from Postgres. With `keepRow` (the outbox still holds the
   * turn's ending, so the row is shown from it anyway), the chat row stays for the clients that watch it.
   */
  reset(opts: { keepRow?: boolean } = {}): void {
    if (opts.keepRow !== true || this.deps.outbox.size === 0) this.chat = null;
    this.queue = null;
    this.cache.clear();
  }

  /** A chat just created here, with its first messages and an empty queue. */
  created(chat: Chat, messages: readonly Message[], titleSource: TitleSource): void {
    this.gone = false;
    this.titleSource = titleSource;
    this.chat = chat;
    this.grantsHeld = NO_GRANTS;
    this.cache.clear();
    this.cache.append(messages, true);
    this.queue = [];
  }

  /** Drops the row (changed outside the object, e.g. by the auto-archive cron) or the queue (changed by a write). */
  dropRow(): void {
    this.chat = null;
  }

  dropQueue(): void {
    this.queue = null;
  }

  get loaded(): Chat | null {
    return this.chat;
  }

  /** The viewer grants of the loaded chat. */
  get grants(): ChatGrants {
    return this.grantsHeld;
  }

  /**
   * The chat row (cached); while Postgres is down and writes wait in the outbox, the snapshot kept with the outbox
   * stands in for it. A first load is settled by the room (`Turns.settle`): a stranded turn is recovered there.
   */
  async load(): Promise<Chat | null> {
    if (this.gone) return null;
    if (this.chat) return this.chat;
    const { store, kv } = this.deps;
    const waiting = this.deps.outbox.size > 0;
    let row: Chat | null;
    try {
      const loaded = await store.chat();
      row = loaded?.chat ?? null;
      this.grantsHeld = loaded?.grants ?? NO_GRANTS;
      if (loaded) this.titleSource = loaded.titleSource;
    } catch (e) {
      const snapshot = waiting ? storedChat(kv, 'chat_snapshot') : null;
      if (!snapshot || !this.transient(e)) throw e;
      row = snapshot;
      this.grantsHeld = NO_GRANTS;
    }
    if (!row) return null;
    this.set(row);
    if (waiting) this.held ??= this.deps.outbox.all().at(-1)?.entry ?? null;
    return this.view();
  }

  /** Keeps a row; while the outbox holds writes, the chat shows as running with a `database_unavailable` error. */
  set(row: Chat): void {
    const waiting = this.deps.outbox.size > 0;
    this.chat = waiting && row.last_error?.kind !== 'database_unavailable' ? { ...row, status: 'running', last_error: DB_WAIT } : row;
  }

  /** Changes fields of the loaded row as they are now in Postgres (or as the outbox will write them). */
  patch(change: Partial<Chat>): void {
    this.set({ ...this.view(), ...change });
  }

  /** Shows the loaded row with a status that is not in Postgres (the outbox gave up waiting). */
  show(change: Pick<Chat, 'status' | 'last_error'>): void {
    this.chat = { ...this.view(), ...change };
  }

  view(): Chat {
    if (!this.chat) throw new Error('the chat is not loaded');
    return this.chat;
  }

  statusEvent(): StreamEvent {
    const chat = this.view();
    return {
      type: 'status',
      chat_id: this.deps.chatId(),
      status: chat.last_error ? { status: chat.status, last_error: chat.last_error } : { status: chat.status },
    };
  }

  /**
   * The first frame of a socket that connects with `after_id`: every durable message after it, the status, the
   * queue, and the turn's parts so far from seq 0 (asked for after the reads: parts keep arriving meanwhile).
   */
  async firstFrame(afterId: number, parts: () => readonly TurnPart[]): Promise<{ events: StreamEvent[]; lastId: number }> {
    const missed = await this.catchUp(afterId);
    const queue = await this.loadQueue();
    const chatId = this.deps.chatId();
    const events: StreamEvent[] = missed.map((m) => ({ type: 'message', chat_id: chatId, message: m }));
    events.push(this.statusEvent());
    events.push({ type: 'queue_update', chat_id: chatId, queued_messages: queue });
    for (const p of parts()) events.push({ type: 'message_part', chat_id: chatId, message_part: { role: p.role, part: p.part, seq: p.seq } });
    return { events, lastId: Math.max(afterId, missed.at(-1)?.id ?? 0) };
  }

  /** Keeps the row with the outbox, for a restart while Postgres is still down. */
  snapshot(): void {
    if (this.chat) this.deps.kv.put('chat_snapshot', JSON.stringify(this.chat));
  }

  dropSnapshot(): void {
    this.deps.kv.delete('chat_snapshot');
  }

  /** The whole live history, from the cache when it holds all of it. */
  async history(): Promise<Message[]> {
    const cached = this.cache.history();
    if (cached) return cached;
    this.counters.historyReads += 1;
    const all = await this.deps.store.after(0);
    // Keep what was read: a cold object reads its history once, not again on every later turn.
    this.cache.fill(0, all);
    return all;
  }

  /** Messages after `afterId`: from the cache when it covers them, else one Postgres read that fills it. */
  async catchUp(afterId: number): Promise<Message[]> {
    const cached = this.cache.after(afterId);
    if (cached) {
      this.counters.cacheCatchups += 1;
      return cached;
    }
    this.counters.dbCatchups += 1;
    const rows = await this.deps.store.after(afterId);
    this.cache.fill(afterId, rows);
    return rows;
  }

  /**
   * A page of `GET /messages`: from the cache when it holds the range. `around`: the older half of `limit` before the
   * id (the newest ones before it) and the rest from the id on (two pages, read together); when one side has fewer,
   * the other fills the page.
   */
  async page(q: MessagePageQuery): Promise<Message[]> {
    if (q.around !== undefined) {
      const { around, limit } = q;
      const [before, after] = await Promise.all([this.page({ before_id: around, limit }), this.page({ after_id: Math.max(0, around - 1), limit })]);
      const older = Math.min(before.length, Math.max(Math.floor(limit / 2), limit - after.length));
      return [...before.slice(before.length - older), ...after.slice(0, limit - older)];
    }
    const cached = this.cache.page(q);
    if (cached) {
      this.counters.cachePages += 1;
      return cached;
    }
    this.counters.dbPages += 1;
    return await this.deps.store.page(q);
  }

  /** After an edit: re-read the live history from Postgres (never the cache) and replace every client's copy. */
  async fullRefresh(): Promise<void> {
    const all = await this.deps.store.after(0);
    this.cache.replace(all);
    this.counters.fullRefreshes += 1;
    const chatId = this.deps.chatId();
    this.deps.hub.refresh(chatId, { type: 'full_refresh', chat_id: chatId, messages: all });
  }

  async loadQueue(): Promise<QueuedMessage[]> {
    this.queue ??= await this.deps.store.queue();
    return this.queue;
  }

  /** The queue without one message that just left it (no Postgres read). */
  took(id: string): QueuedMessage[] {
    this.queue = (this.queue ?? []).filter((q) => q.id !== id);
    return this.queue;
  }

  async refreshQueue(): Promise<void> {
    this.queue = null;
    const q = await this.loadQueue();
    this.deps.hub.publish([{ type: 'queue_update', chat_id: this.deps.chatId(), queued_messages: q }]);
  }
}
