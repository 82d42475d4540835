import { DurableObject } from 'cloudflare:workers';
import { z } from 'zod';
import { ownsChat, type ChatActor } from '../functions/lib/access';
import { Db, isTransient, pgErrorCode } from '../functions/lib/db';
import {
  DB_UNAVAILABLE,
  fail,
  NOT_FOUND,
  ok,
  type ChatRoomRpc,
  type MessagePageQuery,
  type NewChat,
  type PostMessage,
  type PostResult,
  type RoomResult,
  type RoomStats,
  type StreamEvent,
  type TurnOutcome,
} from '../functions/lib/room-api';
import { dbSettings, settings } from '../functions/lib/settings';
import type { ModelDelta } from '../functions/llm/model';
import { NoModelError, resolveModelCached, type ResolvedModel } from '../functions/services/chat-models';
import { pinAgentContext } from '../functions/services/agent-context';
import { type Chat, type ChatStatus, type LastError, type Message, type Part, type QueuedMessage } from '../functions/services/chats';
import { notifyTurnEnd } from '../functions/services/turn-notify';
import { MessageCache } from './message-cache';
import { ChatStore, requestKey, type Written } from './room/chat-store';
import { Mutex } from './room/mutex';
import { Outbox } from './room/outbox';
import { StreamHub } from './room/stream-hub';
import { finishEntryOf, partsOf, type CallOutcome, type FinishEntry, type Turn } from './room/turn';
import { TurnRunner } from './room/turn-runner';

const HEARTBEAT_MS = 15_000;
/** Retries of writes waiting in the outbox: 250 ms, doubling, at most every 3 s; once given up, every minute. */
const RETRY_FIRST_MS = 250;
const RETRY_MAX_MS = 3_000;
const RETRY_AFTER_GIVE_UP_MS = 60_000;
const NO_MODEL_MESSAGE = 'No default chat model config is configured.';
const UNAVAILABLE_MODEL = 'The requested model config is not available (unknown, disabled or deleted).';
const INTERRUPTED: LastError = {
  kind: 'interrupted',
  message: 'The turn was interrupted before it finished (the chat runner restarted). Send the message again to retry.',
};
const DB_WAIT: LastError = {
  kind: 'database_unavailable',
  message: 'The database is unavailable: the answer is kept and will be saved as soon as the database answers again.',
};
const DB_GAVE_UP: LastError = {
  kind: 'database_unavailable',
  message: 'The database has been unavailable for too long: the answer is kept and will be saved when it answers again.',
};
const REPLIES_KEPT = 256;
const ChatSnapshot = z.object({
  id: z.string(),
  owner_id: z.string(),
  title: z.string(),
  status: z.enum(['waiting', 'running', 'interrupting', 'error']),
  last_model_config_id: z.string().nullable(),
  archived: z.boolean(),
  labels: z.record(z.string(), z.string()),
  agent_id: z.string().nullable(),
  last_error: z.object({ message: z.string(), kind: z.string() }).nullable(),
  created_at: z.string(),
  updated_at: z.string(),
}) satisfies z.ZodType<Chat>;

/**
 * One object per chat: the single writer of the chat's history (so per-chat order is exact), the one place that
 * decides whether a turn runs (every decision is made under `lock`, so at most one model call exists per chat), a
 * bounded cache of its newest durable messages, and the owner check on every call (it holds the chat row).
 * The parts live in small modules: the stream hub (sockets, fan-out), the turn runner (prompt, model call), the
 * store (its Postgres statements) and the outbox (turn endings Postgres could not take yet).
 */
export class ChatRoom extends DurableObject<Env> implements ChatRoomRpc {
  private dbConn: Db | null = null;
  private knownChatId: string | null = null;
  /** The chat row as this object last wrote or read it; while the outbox holds writes, shown with their status. */
  private chat: Chat | null = null;
  private readonly cache = new MessageCache(256);
  private queue: QueuedMessage[] | null = null;
  private turn: Turn | null = null;
  /** A finished turn whose write waits in the outbox: its parts are still shown to sockets that connect. */
  private held: FinishEntry | null = null;
  private gone = false;
  private readonly lock = new Mutex();
  private readonly hub: StreamHub;
  private readonly runner: TurnRunner;
  private readonly store: ChatStore;
  private outbox: Outbox;
  /** Answers to recent requests that carried an Idempotency-Key (by stored key), for replays to a warm object. */
  private readonly replies = new Map<string, PostResult>();
  private lastOutcome: TurnOutcome | null = null;
  /** When the alarm is set for; undefined until read once. */
  private alarmAt: number | null | undefined = undefined;
  private readonly counters = { cacheCatchups: 0, dbCatchups: 0, fullRefreshes: 0, historyReads: 0, cachePages: 0, dbPages: 0 };

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    const s = settings(env);
    this.hub = new StreamHub(ctx, s.STREAM_FLUSH_MS);
    this.store = new ChatStore(
      () => this.chatId,
      () => this.db,
    );
    this.outbox = new Outbox(ctx.storage.sql);
    this.runner = new TurnRunner({
      chatId: () => this.chatId,
      db: () => this.db,
      history: () => this.history(),
      hasAgent: async () => ((this.chat ?? (await this.lock.run(() => this.loadChat())))?.agent_id ?? null) !== null,
      encryptionKey: env.PROVIDER_KEY_ENCRYPTION_KEY,
      idleTimeoutMs: s.LLM_IDLE_TIMEOUT_MS,
      maxRetries: s.LLM_MAX_RETRIES,
      onDelta: (turn, d) => {
        this.part(turn, d);
      },
    });
  }

  /**
   * The chat id is the object's name. Some invocations (alarms, seen under load) arrive without `ctx.id.name`, so
   * the first named call stores it and later ones fall back to the stored copy.
   */
  private get chatId(): string {
    if (this.knownChatId !== null) return this.knownChatId;
    const name = this.ctx.id.name;
    const stored = this.ctx.storage.kv.get('chat_id');
    if (name) {
      if (stored !== name) this.ctx.storage.kv.put('chat_id', name);
      this.knownChatId = name;
      return name;
    }
    if (typeof stored === 'string') {
      this.knownChatId = stored;
      return stored;
    }
    throw new Error('ChatRoom must be addressed by chat id (getByName)');
  }

  private get db(): Db {
    this.dbConn ??= new Db(dbSettings(this.env, { durable: true }));
    return this.dbConn;
  }

  // ------------------------------------------------------------------ RPC: reads

  /** The chat, when the actor may see it (from memory once loaded); null when none or not theirs. */
  async get(actor: ChatActor): Promise<RoomResult<Chat>> {
    return await this.guard(async () => {
      const chat = await this.owned(actor);
      return chat ? ok(chat) : fail(404, NOT_FOUND);
    });
  }

  /** A page of live messages, from the cache when it holds the range, else from Postgres. */
  async messages(actor: ChatActor, q: MessagePageQuery): Promise<RoomResult<Message[]>> {
    return await this.guard(async () => {
      if (!(await this.owned(actor))) return fail(404, NOT_FOUND);
      const cached = this.cache.page(q);
      if (cached) {
        this.counters.cachePages += 1;
        return ok(cached);
      }
      this.counters.dbPages += 1;
      return ok(await this.store.page(q));
    });
  }

  async listQueue(actor: ChatActor): Promise<RoomResult<QueuedMessage[]>> {
    return await this.guard(async () => ((await this.owned(actor)) ? ok(await this.loadQueue()) : fail(404, NOT_FOUND)));
  }

  // ------------------------------------------------------------------ RPC: writes

  /** Inserts the chat and its first messages in one transaction, running, then starts the first turn. */
  async create(actor: ChatActor, input: NewChat): Promise<RoomResult<Chat>> {
    return await this.guard(async () => {
      if (input.idempotencyKey !== null) {
        const existing = await this.loadChat();
        if (existing) return this.replayCreate(actor, existing);
      }
      const resolved = await this.resolve(input.modelConfigId, false);
      if (!resolved.ok) return resolved;
      const key = input.idempotencyKey;
      const r = await this.store.create({
        ownerId: actor.userId,
        title: input.title,
        labels: input.labels,
        agentId: input.agentId,
        modelConfigId: resolved.value.config.id,
        messages: input.messages.map((m) => ({ ...m, createdBy: actor.userId, key: m.role === 'user' && key !== null ? requestKey(key) : null })),
      });
      if (r === 'unknown-agent') return fail(400, 'Unknown agent.');
      if (r === 'exists') {
        const chat = await this.loadChat();
        return chat ? this.replayCreate(actor, chat) : fail(409, 'This chat id is taken.');
      }
      this.gone = false;
      this.chat = r.chat;
      this.cache.append(r.messages, true);
      this.queue = [];
      this.runner.forget();
      this.startTurn(resolved.value);
      if (key !== null) this.ctx.storage.kv.put('create_reply', JSON.stringify(r.chat));
      return ok(r.chat);
    });
  }

  /** A new user message: runs now when the chat is idle, else queues (or interrupts the running turn). */
  async postMessage(actor: ChatActor, input: PostMessage): Promise<RoomResult<PostResult>> {
    return await this.guard(async () => {
      const chat = await this.owned(actor);
      if (!chat) return fail(404, NOT_FOUND);
      const key = input.idempotencyKey === null ? null : requestKey(input.idempotencyKey);
      const known = key === null ? undefined : this.replies.get(key);
      if (known) return ok(known);
      await this.drain();
      if (this.turn && input.busyBehavior === 'interrupt') {
        // A replay must not stop the turn its first request started.
        const prior = key === null ? null : await this.store.byKey(key);
        if (prior) return ok(this.remember(key, prior));
        await this.stopTurn({ runQueue: false });
      }
      if (this.turn) {
        if (input.modelConfigId) {
          const check = await this.resolve(input.modelConfigId, false);
          if (!check.ok) return check;
        }
        const queued = await this.store.enqueue({ content: input.content, modelConfigId: input.modelConfigId, createdBy: actor.userId, key });
        if (!queued) {
          const prior = key === null ? null : await this.store.byKey(key);
          if (prior) return ok(this.remember(key, prior));
          return fail(409, 'The chat\'s queue is full (20 messages). Wait for a turn to finish or remove a queued message.');
        }
        await this.refreshQueue();
        return ok(this.remember(key, { kind: 'queued', queued_message: queued }));
      }
      const resolved = await this.resolve(input.modelConfigId ?? chat.last_model_config_id, input.modelConfigId === null);
      if (!resolved.ok) return resolved;
      const w = await this.store.insert(this.db, resolved.value.config.id, [{ role: 'user', content: input.content, createdBy: actor.userId, key }], {
        status: 'running',
        lastError: null,
      });
      const [message] = w.messages;
      if (!message) {
        const prior = key === null ? null : await this.store.byKey(key);
        if (!prior) throw new Error('the insert returned no message');
        return ok(this.remember(key, prior));
      }
      this.wrote(w, { status: 'running', last_error: null, last_model_config_id: resolved.value.config.id });
      this.startTurn(resolved.value);
      return ok(this.remember(key, { kind: 'message', message }));
    });
  }

  /** Replaces a user message's content, drops every later message, refreshes subscribers, runs a new turn. */
  async editMessage(actor: ChatActor, input: { messageId: number; content: Part[] }): Promise<RoomResult<Message>> {
    return await this.guard(async () => {
      const chat = await this.owned(actor);
      if (!chat) return fail(404, NOT_FOUND);
      await this.drain();
      const target = await this.store.message(input.messageId);
      if (!target) return fail(404, NOT_FOUND);
      if (target.role !== 'user') return fail(400, 'Only user messages can be edited.');
      const resolved = await this.resolve(chat.last_model_config_id, true);
      if (!resolved.ok) return resolved;
      // The running turn answers the history being replaced: it stops (its partial is kept until the edit drops it).
      await this.stopTurn({ runQueue: false });
      const updated = await this.store.edit(input.messageId, input.content);
      if (!updated) return fail(404, NOT_FOUND);
      this.runner.forget();
      this.setChat({ ...chat, status: 'running', last_error: null });
      await this.fullRefresh();
      this.hub.publish([this.statusEvent()]);
      this.startTurn(resolved.value);
      return ok(updated);
    });
  }

  /** Stops the running turn; its partial text is kept. Returns the status after the request. */
  async interrupt(actor: ChatActor): Promise<RoomResult<{ status: ChatStatus }>> {
    return await this.guard(async () => {
      const chat = await this.owned(actor);
      if (!chat) return fail(404, NOT_FOUND);
      const turn = this.turn;
      if (!turn) return ok({ status: chat.status });
      // The call stops first, whether or not Postgres can record `interrupting`.
      turn.abort.abort();
      try {
        const row = await this.store.setStatus('interrupting', null);
        if (row) this.setChat(row);
        this.hub.publish([this.statusEvent()]);
      } catch (e) {
        if (!isTransient(e)) throw e;
      }
      return ok({ status: 'interrupting' });
    });
  }

  async deleteQueued(actor: ChatActor, id: string): Promise<RoomResult<null>> {
    return await this.guard(async () => {
      if (!(await this.owned(actor))) return fail(404, NOT_FOUND);
      if (!(await this.store.dequeue(id))) return fail(404, NOT_FOUND);
      await this.refreshQueue();
      return ok(null);
    });
  }

  /** Moves a queued message to the front. When the chat is idle it runs at once (`message`), else it is next. */
  async promoteQueued(actor: ChatActor, id: string): Promise<RoomResult<PostResult>> {
    return await this.guard(async () => {
      if (!(await this.owned(actor))) return fail(404, NOT_FOUND);
      await this.drain();
      const row = await this.store.promote(id);
      if (!row) return fail(404, NOT_FOUND);
      if (this.turn) {
        await this.refreshQueue();
        return ok<PostResult>({ kind: 'queued', queued_message: row });
      }
      this.queue = null;
      const started = await this.runNextQueued();
      if (!started.ok) return started;
      return started.value ? ok<PostResult>({ kind: 'message', message: started.value }) : fail(404, NOT_FOUND);
    });
  }

  /** Renames, archives or relabels. */
  async updateMeta(
    actor: ChatActor,
    patch: { title?: string | undefined; archived?: boolean | undefined; labels?: Record<string, string> | undefined },
  ): Promise<RoomResult<Chat>> {
    return await this.guard(async () => {
      if (!(await this.owned(actor))) return fail(404, NOT_FOUND);
      const row = await this.store.updateMeta(patch);
      if (!row) return fail(404, NOT_FOUND);
      this.setChat(row);
      return ok(this.view());
    });
  }

  /** Deletes the chat (every chat-scoped row goes by ON DELETE CASCADE), its turn, and everything held here. */
  async deleteChat(actor: ChatActor): Promise<RoomResult<null>> {
    return await this.guard(async () => {
      if (!(await this.owned(actor))) return fail(404, NOT_FOUND);
      await this.store.delete();
      await this.forgetAll();
      return ok(null);
    });
  }

  /**
   * Re-pins the chat's context from its agent's current set: delete + copy in one transaction, the agent's aggregate
   * hash stamped and the dirty mark cleared. The next turn reads the new pin.
   */
  async repinContext(actor: ChatActor): Promise<RoomResult<{ pinned: number; aggregate_hash: string }>> {
    return await this.guard(async () => {
      const chat = await this.owned(actor);
      if (!chat) return fail(404, NOT_FOUND);
      const agentId = chat.agent_id;
      if (agentId === null) return fail(409, 'This chat has no agent to pin context from.');
      const r = await this.db.inTx((tx) => pinAgentContext(tx, this.chatId, agentId, { replace: true }));
      if (!r) return fail(409, "The chat's agent no longer exists; its pinned context is kept.");
      this.runner.forgetPinned();
      return ok({ pinned: r.pinned, aggregate_hash: r.aggregateHash });
    });
  }

  // ------------------------------------------------------------------ RPC: from the deployment (cron, agents)

  /** Tells the stream's subscribers that the agent's context changed since the chat pinned it (best effort). */
  contextDirty(): Promise<void> {
    if (!this.gone) this.hub.publish([{ type: 'context_dirty', chat_id: this.chatId }]);
    return Promise.resolve();
  }

  /** Drops the cached chat row (it was changed outside this object, e.g. by the auto-archive cron). */
  async refresh(): Promise<void> {
    await this.lock.run(() => {
      this.chat = null;
      return Promise.resolve();
    });
  }

  /** The chat was deleted in Postgres (retention): stop work, close sockets, forget everything. */
  async purge(): Promise<void> {
    await this.lock.run(() => this.forgetAll());
  }

  /** Cache and fan-out counters (for the scale test and the owners' metrics route). */
  stats(): Promise<RoomStats> {
    return Promise.resolve({
      ...this.counters,
      sockets: this.hub.count,
      cached: this.cache.size,
      compactions: this.runner.compactions,
      outbox: this.outbox.size,
    });
  }

  /** The last finished turn's outcome: reused by tests. */
  outcome(): Promise<TurnOutcome | null> {
    return Promise.resolve(this.lastOutcome);
  }

  /** Resolves when no turn is running (for tests and the scale test's shutdown); the status then. */
  async idle(): Promise<ChatStatus | null> {
    for (let turn = this.turn; turn; turn = this.turn) {
      await turn.call;
      await this.lock.run(() => Promise.resolve());
    }
    return await this.lock.run(async () => (await this.loadChat())?.status ?? null);
  }

  // ------------------------------------------------------------------ stream

  /**
   * The stream. The Worker has authenticated the request and passes the actor and `after_id`; this object checks
   * that the chat is theirs (404 before any upgrade), then accepts the socket and sends its first frame.
   */
  override async fetch(request: Request): Promise<Response> {
    const params = z
      .object({ userId: z.string().min(1), keyId: z.string(), afterId: z.coerce.number().int().nonnegative() })
      .safeParse({
        userId: request.headers.get('x-chatd-user'),
        keyId: request.headers.get('x-chatd-key') ?? '',
        afterId: request.headers.get('x-chatd-after-id'),
      });
    if (!params.success) return Response.json({ message: 'expected a stream request from the Worker' }, { status: 400 });
    const { userId, keyId, afterId } = params.data;
    try {
      return await this.lock.run(async () => {
        const chat = await this.loadChat();
        if (!chat || chat.owner_id !== userId) return Response.json({ message: NOT_FOUND }, { status: 404 });
        if (request.headers.get('upgrade')?.toLowerCase() !== 'websocket') {
          return Response.json({ message: 'This route is a WebSocket: send an Upgrade: websocket request.' }, { status: 426 });
        }
        const missed = await this.catchUp(afterId);
        const queue = await this.loadQueue();
        const events: StreamEvent[] = missed.map((m) => ({ type: 'message', chat_id: this.chatId, message: m }));
        events.push(this.statusEvent());
        events.push({ type: 'queue_update', chat_id: this.chatId, queued_messages: queue });
        for (const p of this.turn?.parts ?? (this.held ? partsOf(this.held) : [])) {
          events.push({ type: 'message_part', chat_id: this.chatId, message_part: { role: 'assistant', part: p.part, seq: p.seq } });
        }
        const pair = new WebSocketPair();
        this.hub.accept(pair[1]);
        this.hub.attach(pair[1], { userId, keyId, lastId: Math.max(afterId, missed.at(-1)?.id ?? 0) }, events);
        return new Response(null, { status: 101, webSocket: pair[0] });
      });
    } catch (e) {
      if (!isTransient(e)) throw e;
      this.reset();
      return Response.json({ message: DB_UNAVAILABLE }, { status: 503 });
    }
  }

  override webSocketMessage(ws: WebSocket, message: string | ArrayBuffer): void {
    this.hub.message(ws, message);
  }

  override webSocketClose(ws: WebSocket, code: number): void {
    this.hub.closed(ws, code);
  }

  override webSocketError(ws: WebSocket): void {
    this.hub.forget(ws);
  }

  // ------------------------------------------------------------------ heartbeat, outbox retries and recovery

  /**
   * The heartbeat while a turn runs, the retries of writes waiting in the outbox, and the recovery of a chat left
   * `running` by a runner that vanished. It never throws: a failure schedules the next try.
   */
  override async alarm(): Promise<void> {
    this.alarmAt = null;
    if (this.gone) return;
    await this.lock.run(async () => {
      try {
        if (this.outbox.size > 0) await this.drain();
        await this.loadChat();
      } catch (e) {
        if (!isTransient(e)) console.error(JSON.stringify({ level: 'error', msg: 'chat alarm failed', chat_id: this.chatId, error: String(e) }));
        this.reset();
      }
    });
    if (this.outbox.size > 0) this.retryLater();
    else if (this.turn) this.wakeBy(Date.now() + HEARTBEAT_MS);
  }

  /** Schedules the next try of the outbox with backoff; past OUTBOX_GIVE_UP_MS the chat is shown as `error`. */
  private retryLater(): void {
    const [first] = this.outbox.all();
    if (!first) return;
    const now = Date.now();
    const givenUp = now - first.createdAt >= settings(this.env).OUTBOX_GIVE_UP_MS;
    if (givenUp && this.chat && this.chat.status !== 'error') {
      this.chat = { ...this.chat, status: 'error', last_error: DB_GAVE_UP };
      this.hub.publish([{ type: 'error', chat_id: this.chatId, error: DB_GAVE_UP }, this.statusEvent()]);
    }
    const delay = givenUp ? RETRY_AFTER_GIVE_UP_MS : Math.min(RETRY_MAX_MS, RETRY_FIRST_MS * 2 ** first.attempts);
    this.wakeBy(now + delay);
  }

  /** Makes sure the alarm fires by `at` (one storage write only when it would fire later or not at all). */
  private wakeBy(at: number): void {
    if (this.alarmAt === undefined) {
      // Read once per object life; after that this object is the only one that sets it.
      void this.ctx.storage.getAlarm().then((current) => {
        this.alarmAt = current;
        this.wakeBy(at);
      });
      return;
    }
    if (this.alarmAt !== null && this.alarmAt <= at) return;
    this.alarmAt = at;
    void this.ctx.storage.setAlarm(at);
  }

  // ------------------------------------------------------------------ the chat row

  /**
   * Runs an RPC under the lock. Any error resets what this object holds (the cache, the chat row, the queue), since
   * it may have come after a commit; a database that cannot be reached is a 503 result.
   */
  private async guard<T>(fn: () => Promise<RoomResult<T>>): Promise<RoomResult<T>> {
    try {
      return await this.lock.run(async () => {
        try {
          return await fn();
        } catch (e) {
          this.reset();
          throw e;
        }
      });
    } catch (e) {
      if (isTransient(e)) return fail(503, DB_UNAVAILABLE);
      throw e;
    }
  }

  /** Forget what may be stale; the next call reloads it from Postgres. A running turn and the outbox stay. */
  private reset(): void {
    this.chat = null;
    this.queue = null;
    this.cache.clear();
    this.runner.forget();
  }

  /** The chat when the actor may see it. */
  private async owned(actor: ChatActor): Promise<Chat | null> {
    const chat = await this.loadChat();
    return chat && ownsChat(actor, chat) ? chat : null;
  }

  /**
   * The chat row (cached). On first load, a chat left running by a vanished runner is recovered, unless its turn's
   * write waits in the outbox; while Postgres is down, the snapshot kept with the outbox stands in for it.
   */
  private async loadChat(): Promise<Chat | null> {
    if (this.gone) return null;
    if (this.chat) return this.view();
    let row: Chat | null;
    try {
      row = await this.store.chat();
    } catch (e) {
      const snapshot = this.outbox.size > 0 ? ChatSnapshot.safeParse(JSON.parse(String(this.ctx.storage.kv.get('chat_snapshot') ?? 'null'))) : null;
      if (!isTransient(e) || !snapshot?.success) throw e;
      row = snapshot.data;
    }
    if (!row) return null;
    this.setChat(row);
    if (this.outbox.size > 0) {
      this.held ??= this.outbox.all().at(-1)?.entry ?? null;
      this.retryLater();
    } else if ((row.status === 'running' || row.status === 'interrupting') && !this.turn) {
      // Nothing runs here: the object was evicted or crashed mid-turn. Never leave the chat running.
      this.setChat((await this.store.setStatus('error', INTERRUPTED)) ?? row);
      this.hub.publish([{ type: 'error', chat_id: this.chatId, error: INTERRUPTED }, this.statusEvent()]);
    }
    return this.view();
  }

  /** Keeps a row; while the outbox holds writes, the chat shows as running with a `database_unavailable` error. */
  private setChat(row: Chat): void {
    const waiting = this.outbox.size > 0;
    this.chat = waiting && row.last_error?.kind !== 'database_unavailable' ? { ...row, status: 'running', last_error: DB_WAIT } : row;
  }

  private view(): Chat {
    if (!this.chat) throw new Error('the chat is not loaded');
    return this.chat;
  }

  private statusEvent(): StreamEvent {
    const chat = this.view();
    return {
      type: 'status',
      chat_id: this.chatId,
      status: chat.last_error ? { status: chat.status, last_error: chat.last_error } : { status: chat.status },
    };
  }

  /** After messages and a status change were written: cache and publish them, then the status. */
  private wrote(w: Written, change: Partial<Pick<Chat, 'status' | 'last_error' | 'last_model_config_id'>>): void {
    const chat = this.view();
    this.setChat({ ...chat, ...change, updated_at: w.chatUpdatedAt ?? chat.updated_at });
    this.cache.append(w.messages);
    this.hub.publish([...w.messages.map((m): StreamEvent => ({ type: 'message', chat_id: this.chatId, message: m })), this.statusEvent()]);
  }

  private replayCreate(actor: ChatActor, chat: Chat): RoomResult<Chat> {
    if (!ownsChat(actor, chat)) return fail(409, 'This Idempotency-Key was already used for another request.');
    const first = ChatSnapshot.safeParse(JSON.parse(String(this.ctx.storage.kv.get('create_reply') ?? 'null')));
    return ok(first.success ? first.data : chat);
  }

  /** Keeps the answer to a request with an Idempotency-Key for replays (a bounded, oldest-out map). */
  private remember(key: string | null, r: PostResult): PostResult {
    if (key === null) return r;
    this.replies.delete(key);
    this.replies.set(key, r);
    if (this.replies.size > REPLIES_KEPT) {
      const oldest = this.replies.keys().next();
      if (!oldest.done) this.replies.delete(oldest.value);
    }
    return r;
  }

  private async resolve(configId: string | null, fallback: boolean): Promise<RoomResult<ResolvedModel>> {
    try {
      const r = await resolveModelCached(this.db, configId);
      if (configId !== null && !fallback && !r.requested) return fail(400, UNAVAILABLE_MODEL);
      return ok(r);
    } catch (e) {
      if (e instanceof NoModelError) return fail(400, configId !== null && !fallback ? UNAVAILABLE_MODEL : NO_MODEL_MESSAGE);
      throw e;
    }
  }

  /** Everything this object holds goes: the chat was deleted. */
  private async forgetAll(): Promise<void> {
    this.gone = true;
    this.turn?.abort.abort();
    this.turn = null;
    this.held = null;
    this.hub.closeAll(4404, 'chat deleted');
    this.reset();
    this.replies.clear();
    const id = this.knownChatId ?? this.ctx.id.name ?? null;
    await this.ctx.storage.deleteAlarm();
    await this.ctx.storage.deleteAll();
    this.alarmAt = null;
    this.outbox = new Outbox(this.ctx.storage.sql);
    if (id) this.ctx.storage.kv.put('chat_id', id);
    await this.dbConn?.close();
    this.dbConn = null;
  }

  // ------------------------------------------------------------------ messages, queue, catch-up

  /** The whole live history, from the cache when it holds all of it. */
  private async history(): Promise<Message[]> {
    const cached = this.cache.history();
    if (cached) return cached;
    this.counters.historyReads += 1;
    const all = await this.store.after(0);
    // Keep what was read: a cold object reads its history once, not again on every later turn.
    this.cache.fill(0, all);
    return all;
  }

  /** Messages after `afterId`: from the cache when it covers them, else one Postgres read that fills it. */
  private async catchUp(afterId: number): Promise<Message[]> {
    const cached = this.cache.after(afterId);
    if (cached) {
      this.counters.cacheCatchups += 1;
      return cached;
    }
    this.counters.dbCatchups += 1;
    const rows = await this.store.after(afterId);
    this.cache.fill(afterId, rows);
    return rows;
  }

  /** After an edit: re-read the live history from Postgres (never the cache) and replace every client's copy. */
  private async fullRefresh(): Promise<void> {
    const all = await this.store.after(0);
    this.cache.replace(all);
    this.counters.fullRefreshes += 1;
    this.hub.refresh(this.chatId, { type: 'full_refresh', chat_id: this.chatId, messages: all });
  }

  private async loadQueue(): Promise<QueuedMessage[]> {
    this.queue ??= await this.store.queue();
    return this.queue;
  }

  private async refreshQueue(): Promise<void> {
    this.queue = null;
    const q = await this.loadQueue();
    this.hub.publish([{ type: 'queue_update', chat_id: this.chatId, queued_messages: q }]);
  }

  // ------------------------------------------------------------------ turns

  /** Inside the lock, with the chat already `running` in Postgres: starts the model call in the background. */
  private startTurn(resolved: ResolvedModel): void {
    if (this.turn) throw new Error('a turn is already running');
    const turn: Turn = { id: crypto.randomUUID(), resolved, abort: new AbortController(), parts: [], call: Promise.resolve({ result: null, failure: null }) };
    this.turn = turn;
    this.wakeBy(Date.now() + HEARTBEAT_MS);
    turn.call = this.runner.run(turn);
    const done = turn.call
      .then((outcome) => this.lock.run(() => this.completeTurn(turn, outcome, { runQueue: true })))
      .catch((e: unknown) => {
        console.error(JSON.stringify({ level: 'error', msg: 'turn completion failed', chat_id: this.chatId, error: String(e) }));
      });
    this.ctx.waitUntil(done);
  }

  private part(turn: Turn, d: ModelDelta): void {
    if (this.turn !== turn) return;
    const part: Part = { type: d.type, text: d.text };
    const seq = turn.parts.length;
    turn.parts.push({ part, seq });
    this.hub.part({ type: 'message_part', chat_id: this.chatId, message_part: { role: 'assistant', part, seq } });
  }

  /** Inside the lock: stops the running turn, waits for its call to end, and writes what it produced. */
  private async stopTurn(opts: { runQueue: boolean }): Promise<void> {
    const turn = this.turn;
    if (!turn) return;
    turn.abort.abort();
    await this.completeTurn(turn, await turn.call, opts);
  }

  /**
   * Inside the lock, once a turn's call is over: writes its ending (once, whoever comes first: the turn itself, or
   * a request that stopped it), then runs the next queued message.
   */
  private async completeTurn(turn: Turn, outcome: CallOutcome, opts: { runQueue: boolean }): Promise<void> {
    if (this.turn !== turn) return;
    this.turn = null;
    if (this.gone) return;
    const entry = finishEntryOf(turn, outcome);
    this.lastOutcome = { status: entry.status, finalText: entry.finalText, error: entry.lastError, modelConfigId: entry.modelConfigId };
    if (this.outbox.size > 0) {
      // Writes keep their order: this one goes behind those already waiting.
      this.defer(entry);
      await this.drain().catch((e: unknown) => {
        if (!isTransient(e)) throw e;
      });
      return;
    }
    let w: Written;
    try {
      w = await this.store.finish(entry);
    } catch (e) {
      if (pgErrorCode(e) === '23503') {
        // The chat was deleted under the turn: nothing to keep.
        this.gone = true;
        return;
      }
      if (!isTransient(e)) throw e;
      this.defer(entry);
      return;
    }
    await this.finished(entry, w, opts.runQueue);
  }

  /** A turn's ending is in Postgres: publish it, notify the owner, and run the next queued message. */
  private async finished(entry: FinishEntry, w: Written, runQueue: boolean): Promise<void> {
    const chat = this.chat ?? (await this.loadChat());
    if (!chat) return;
    this.setChat({ ...chat, status: entry.status, last_error: entry.lastError, updated_at: w.chatUpdatedAt ?? chat.updated_at });
    this.cache.append(w.messages);
    const events: StreamEvent[] = w.messages.map((m) => ({ type: 'message', chat_id: this.chatId, message: m }));
    if (entry.lastError) events.push({ type: 'error', chat_id: this.chatId, error: entry.lastError });
    // After a failure the queue pauses; otherwise its next message runs at once, and `waiting` is not published.
    const next = entry.status === 'waiting' && runQueue ? await this.runNextQueued(events) : null;
    if (next?.ok && next.value) return;
    this.hub.publish([...events, this.statusEvent()]);
    this.notifyOwner(entry);
  }

  /** Postgres could not take a turn's ending: keep it in the outbox, show it, and retry with backoff. */
  private defer(entry: FinishEntry): void {
    this.outbox.push(entry);
    this.held = entry;
    if (this.chat) {
      this.ctx.storage.kv.put('chat_snapshot', JSON.stringify(this.chat));
      this.setChat(this.chat);
      this.hub.publish([this.statusEvent()]);
    }
    console.error(JSON.stringify({ level: 'warn', msg: 'turn ending kept in the outbox until the database answers', chat_id: this.chatId }));
    this.retryLater();
  }

  /**
   * Applies the outbox in order; an entry leaves it only once Postgres committed it (a replay after a lost reply
   * changes nothing: each carries its turn's idempotency key). Throws when Postgres still cannot take them.
   */
  private async drain(): Promise<void> {
    if (this.outbox.size === 0) return;
    for (const item of this.outbox.all()) {
      let w: Written;
      try {
        w = await this.store.finish(item.entry);
      } catch (e) {
        if (pgErrorCode(e) === '23503') {
          await this.forgetAll();
          return;
        }
        if (isTransient(e)) {
          this.outbox.failed(item.seq);
          throw e;
        }
        // Postgres refuses it for good (it could never be applied): keep going with the rest.
        console.error(JSON.stringify({ level: 'error', msg: 'dropping an outbox entry Postgres refuses', chat_id: this.chatId, error: String(e) }));
        this.outbox.remove(item.seq);
        continue;
      }
      this.outbox.remove(item.seq);
      const last = this.outbox.size === 0;
      if (last) {
        this.held = null;
        this.ctx.storage.kv.delete('chat_snapshot');
        if (this.chat) this.chat = { ...this.chat, status: item.entry.status, last_error: item.entry.lastError };
      }
      await this.finished(item.entry, w, last);
    }
  }

  /**
   * Inside the lock, with no turn running: the queue's first message becomes the next user message and its turn
   * starts. Its model is resolved first, and taking it out of the queue and inserting it is one statement, so a
   * failure loses nothing. `events` (a finished turn's) are published before it. Null when the queue is empty.
   */
  private async runNextQueued(events: StreamEvent[] = []): Promise<RoomResult<Message | null>> {
    // This object is the queue's only writer: a queue it knows to be empty needs no Postgres round trip.
    const [head] = await this.loadQueue();
    if (!head) return ok(null);
    const chat = this.view();
    const resolved = await this.resolve(head.model_config_id ?? chat.last_model_config_id, true);
    if (!resolved.ok) {
      // Paused, not lost: the message stays first in the queue.
      const error: LastError = { kind: 'config', message: resolved.message };
      const row = await this.store.setStatus('error', error);
      if (row) this.setChat(row);
      this.hub.publish([...events, { type: 'error', chat_id: this.chatId, error }, this.statusEvent()]);
      return resolved;
    }
    const w = await this.store.runQueued(head.id, resolved.value.config.id);
    this.queue = (this.queue ?? []).filter((q) => q.id !== head.id);
    const [message] = w.messages;
    if (!message) {
      await this.refreshQueue();
      return ok(null);
    }
    this.hub.publish([...events, { type: 'queue_update', chat_id: this.chatId, queued_messages: this.queue }]);
    this.wrote(w, { status: 'running', last_error: null, last_model_config_id: resolved.value.config.id });
    this.startTurn(resolved.value);
    return ok(message);
  }

  /**
   * After the status is published: push the turn's end to the chat's owner, in the background, from what the turn
   * already holds (its final text, the chat row), with no Postgres read here.
   */
  private notifyOwner(entry: FinishEntry): void {
    const chat = this.chat;
    if (!chat) return;
    this.ctx.waitUntil(
      notifyTurnEnd(this.env, {
        chatId: this.chatId,
        ownerId: chat.owner_id,
        title: chat.title,
        finalText: entry.finalText,
        failed: entry.status === 'error',
        ownerWatching: this.hub.watching(chat.owner_id),
      }),
    );
  }
}

