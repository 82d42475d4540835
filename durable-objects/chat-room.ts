import { DurableObject } from 'cloudflare:workers';
import { z } from 'zod';
import { dbSettings, settings } from '../functions/env';
import { Db, pgErrorCode } from '../functions/lib/db';
import { keyRing } from '../functions/lib/keyring';
import { buildPrompt, compactionPlan, contextTokens, shouldCompact, summaryRequest, type Prompt, type Summary } from '../functions/llm/compaction';
import { callModel, ModelError, type ModelDelta, type ModelResult } from '../functions/llm/model';
import { NoModelError, resolveModelCached, sealBinding, type ResolvedModel } from '../functions/services/chat-models';
import { pinAgentContext, promptContextItems, renderPromptContext, type PromptContextItem } from '../functions/services/agent-context';
import {
  MAX_QUEUED,
  toChat,
  toMessage,
  toQueued,
  type Chat,
  type ChatStatus,
  type LastError,
  type Message,
  type Part,
  type QueuedMessage,
  type Role,
  type Usage,
} from '../functions/services/chats';
import { getChatMessageById, getChatMessagesByChatId, insertChatMessages, softDeleteChatMessagesAfter, updateChatMessageContent } from '../sql/generated/chat_messages.queries';
import { deleteQueuedMessage, getQueuedMessages, insertQueuedMessage, popQueuedMessage, promoteQueuedMessage } from '../sql/generated/chat_queue.queries';
import { deleteChatById, getChatById, insertChat, updateChatMeta, updateChatStatus } from '../sql/generated/chats.queries';
import { deleteChatSummariesFrom, getLatestChatSummary, insertChatSummary } from '../sql/generated/chat_summaries.queries';
import { getChatPromptContext } from '../sql/generated/chat_context.queries';
import { notifyTurnEnd } from '../functions/services/turn-notify';
import { getSetting } from '../functions/services/site-config';
import { MessageCache } from './message-cache';

/** Events sent to stream subscribers; each frame is a JSON array of them. */
export type StreamEvent =
  | { type: 'message'; chat_id: string; message: Message }
  | { type: 'message_part'; chat_id: string; message_part: { role: 'assistant'; part: Part; seq: number } }
  | { type: 'status'; chat_id: string; status: { status: ChatStatus; last_error?: LastError } }
  | { type: 'error'; chat_id: string; error: LastError }
  | { type: 'queue_update'; chat_id: string; queued_messages: QueuedMessage[] }
  | { type: 'full_refresh'; chat_id: string; messages: Message[] }
  /** The chat's agent changed its context since the chat pinned it (`PUT /chats/{id}/context` re-pins). */
  | { type: 'context_dirty'; chat_id: string };

/** What an RPC reports instead of throwing (errors lose their class across RPC). */
export type RoomResult<T> = { ok: true; value: T } | { ok: false; status: 400 | 404 | 409; message: string };

const ok = <T,>(value: T): RoomResult<T> => ({ ok: true, value });
const fail = (status: 400 | 404 | 409, message: string): RoomResult<never> => ({ ok: false, status, message });

/** Per-socket state, kept in the socket's attachment so it survives hibernation. Parsed when restored. */
const Attachment = z.object({ userId: z.string(), lastId: z.number().int().nonnegative() });
type Attachment = z.infer<typeof Attachment>;

/** Frames a client may send. Anything else closes the socket with 1008. */
const ClientFrame = z.object({ type: z.literal('ping') }).strict();

export interface NewChat {
  id: string;
  ownerId: string;
  title: string;
  labels: Record<string, string>;
  agentId: string | null;
  /** Null: the default config. */
  modelConfigId: string | null;
  /** The chat's first messages; the deployment system prompt, when set, is put before them here. */
  messages: { role: Role; content: Part[] }[];
}

export interface PostMessage {
  userId: string;
  content: Part[];
  modelConfigId: string | null;
  busyBehavior: 'queue' | 'interrupt';
}

export type PostResult = { kind: 'message'; message: Message } | { kind: 'queued'; queued_message: QueuedMessage };

export interface RoomStats {
  cacheCatchups: number;
  dbCatchups: number;
  fullRefreshes: number;
  /** Times the model's history was read from Postgres (a cold object's first turn; never again while it is warm). */
  historyReads: number;
  sockets: number;
  cached: number;
  compactions: number;
}

interface Turn {
  abort: AbortController;
  parts: { part: Part; seq: number }[];
  seq: number;
  done: Promise<void>;
  resolved: ResolvedModel;
}

/** The result of a finished turn, reused by work after it (notifications) instead of re-reading. */
export interface TurnOutcome {
  status: 'waiting' | 'error';
  finalText: string;
  error: LastError | null;
  resolved: ResolvedModel;
}

const HEARTBEAT_MS = 15_000;
const NO_MODEL_MESSAGE = 'No default chat model config is configured.';
const INTERRUPTED: LastError = {
  kind: 'interrupted',
  message: 'The turn was interrupted before it finished (the chat runner restarted). Send the message again to retry.',
};
const UNKNOWN_AGENT = 'Unknown agent.';

/** Thrown inside create()'s transaction to roll it back when the agent vanished after the Worker checked it. */
class UnknownAgentError extends Error {}

/** Runs async sections one at a time, in call order. */
class Mutex {
  private tail: Promise<unknown> = Promise.resolve();
  run<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.tail.then(fn, fn);
    this.tail = next.catch(() => undefined);
    return next;
  }
}

/**
 * One object per chat: the single writer of the chat's history (so per-chat order is exact), a bounded cache
 * of its newest durable messages, the WebSocket fan-out, and the turn runner. Every write goes through
 * `lock`, so a subscriber's catch-up and a concurrent insert can never interleave.
 */
export class ChatRoom extends DurableObject<Env> {
  private dbConn: Db | null = null;
  private chat: Chat | null = null;
  private readonly cache = new MessageCache(256);
  private queue: QueuedMessage[] | null = null;
  private turn: Turn | null = null;
  /** >0 while a caller interrupts a turn to run its own message next: the queue must not jump in. */
  private holdQueue = 0;
  private readonly lock = new Mutex();
  private readonly attachments = new Map<WebSocket, Attachment>();
  /** `message_part` events not sent yet: a turn's deltas go out together, one frame per STREAM_FLUSH_MS. */
  private pendingParts: StreamEvent[] = [];
  private flushTimer: ReturnType<typeof setTimeout> | undefined;
  /** The chat id once known (see `chatId`). */
  private knownChatId: string | null = null;
  private readonly counters = { cacheCatchups: 0, dbCatchups: 0, fullRefreshes: 0, historyReads: 0 };
  private gone = false;
  /** Outcomes of finished turns, for tests and for work after a turn. */
  private lastOutcome: TurnOutcome | null = null;
  /** The newest compaction summary; undefined until read once (then kept current by this object). */
  private summary: Summary | null | undefined = undefined;
  private compactions = 0;
  /** The pinned instruction files and skills the model is given; undefined until read once (dropped on re-pin). */
  private pinnedContext: PromptContextItem[] | undefined = undefined;
  /** Bumped whenever pinnedContext is dropped, so a read that raced with a re-pin is not kept. */
  private pinnedGeneration = 0;

  /**
   * The chat id is the object's name. Some invocations (alarms, seen under load) arrive without `ctx.id.name`,
   * so the first named call stores it and later ones fall back to the stored copy.
   */
  private get chatId(): string {
    // Read on every event and statement of a turn: kept in a field, so storage is touched once per object life.
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

  private chatIdOrEmpty(): string {
    try {
      return this.chatId;
    } catch {
      return '';
    }
  }

  private get db(): Db {
    this.dbConn ??= new Db(dbSettings(this.env, { durable: true }));
    return this.dbConn;
  }

  // ------------------------------------------------------------------ RPC: the chat row

  /** The chat, from memory once loaded (every change to it goes through this object). Null when none. */
  async chatRow(): Promise<Chat | null> {
    return await this.lock.run(() => this.loadChat());
  }

  /** Renames, archives or relabels; null when the chat does not exist. */
  async updateMeta(patch: { title?: string | undefined; archived?: boolean | undefined; labels?: Record<string, string> | undefined }): Promise<Chat | null> {
    return await this.lock.run(async () => {
      if (!(await this.loadChat())) return null;
      const [row] = await updateChatMeta.run(
        {
          id: this.chatId,
          title: patch.title ?? null,
          archived: patch.archived ?? null,
          labels: patch.labels ? JSON.stringify(patch.labels) : null,
        },
        this.db,
      );
      this.chat = row ? toChat(row) : null;
      return this.chat;
    });
  }

  /** Deletes the chat (every chat-scoped row goes by ON DELETE CASCADE) and everything held here. */
  async deleteChat(): Promise<boolean> {
    const existed = await this.lock.run(async () => (await deleteChatById.run({ id: this.chatId }, this.db)).length > 0);
    await this.purge();
    return existed;
  }

  /**
   * Re-pins the chat's context from its agent's current set: delete + copy in one transaction, the agent's
   * aggregate hash stamped and the dirty mark cleared. The next turn reads the new pin.
   */
  async repinContext(): Promise<RoomResult<{ pinned: number; aggregate_hash: string }>> {
    return await this.lock.run(async () => {
      const chat = await this.loadChat();
      if (!chat) return fail(404, 'Resource not found or you do not have access to this resource');
      const agentId = chat.agent_id;
      if (agentId === null) return fail(409, 'This chat has no agent to pin context from.');
      const r = await this.db.inTx((tx) => pinAgentContext(tx, this.chatId, agentId, { replace: true }));
      if (!r) return fail(409, "The chat's agent no longer exists; its pinned context is kept.");
      this.dropPinnedContext();
      return ok({ pinned: r.pinned, aggregate_hash: r.aggregateHash });
    });
  }

  /** Tells the stream's subscribers that the agent's context changed since the chat pinned it (best effort). */
  contextDirty(): void {
    if (this.gone) return;
    this.publish([{ type: 'context_dirty', chat_id: this.chatId }]);
  }

  /** Drops the cached chat row (it was changed outside this object, e.g. by the auto-archive cron). */
  async refresh(): Promise<void> {
    await this.lock.run(() => {
      this.chat = null;
      return Promise.resolve();
    });
  }

  // ------------------------------------------------------------------ RPC: writes

  /** Inserts the chat and its first messages in one transaction, then starts the first turn. */
  async create(input: NewChat): Promise<RoomResult<Chat>> {
    return await this.lock.run(async () => {
      const resolved = await this.resolve(input.modelConfigId, false);
      if (!resolved.ok) return resolved;
      const agentId = input.agentId;
      let created: { chat: Chat; messages: Message[] };
      try {
        created = await this.db.inTx(async (tx) => {
          const [row] = await insertChat.run(
            {
              id: input.id,
              owner_id: input.ownerId,
              title: input.title,
              status: 'waiting',
              last_model_config_id: resolved.value.config.id,
              labels: JSON.stringify(input.labels),
              agent_id: agentId,
            },
            tx,
          );
          // Hydration: the chat pins its own copy of the agent's context, in the same transaction.
          if (agentId !== null && !(await pinAgentContext(tx, input.id, agentId, { replace: false }))) throw new UnknownAgentError();
          const prompt = (await getSetting(tx, 'system_prompt')).trim();
          const first: { role: Role; content: Part[] }[] = prompt
            ? [{ role: 'system', content: [{ type: 'text', text: prompt }] }, ...input.messages]
            : input.messages;
          const inserted = await this.insertMessages(tx, resolved.value.config.id, first.map((m) => ({ ...m, createdBy: input.ownerId })));
          return { chat: toChat(row), messages: inserted };
        });
      } catch (e) {
        if (e instanceof UnknownAgentError) return fail(400, UNKNOWN_AGENT);
        throw e;
      }
      const { chat, messages } = created;
      this.dropPinnedContext();
      this.chat = chat;
      this.gone = false;
      this.cache.append(messages, true);
      this.queue = [];
      await this.startTurn(resolved.value);
      return ok(this.chat);
    });
  }

  /** A new user message: runs now when the chat is idle, else queues (or interrupts the running turn). */
  async postMessage(input: PostMessage): Promise<RoomResult<PostResult>> {
    if (input.busyBehavior === 'interrupt' && this.turn) {
      this.holdQueue += 1;
      try {
        await this.interruptAndWait();
        return await this.lock.run(() => this.acceptMessage(input));
      } finally {
        this.holdQueue -= 1;
      }
    }
    return await this.lock.run(() => this.acceptMessage(input));
  }

  private async acceptMessage(input: PostMessage): Promise<RoomResult<PostResult>> {
    const chat = await this.loadChat();
    if (!chat) return fail(404, 'Resource not found or you do not have access to this resource');
    if (this.turn) {
      if (input.modelConfigId) {
        const check = await this.resolve(input.modelConfigId, false);
        if (!check.ok) return check;
      }
      const [row] = await insertQueuedMessage.run(
        {
          chat_id: this.chatId,
          content: JSON.stringify(input.content),
          model_config_id: input.modelConfigId,
          created_by: input.userId,
          max: MAX_QUEUED,
        },
        this.db,
      );
      if (!row) return fail(409, `The chat's queue is full (${MAX_QUEUED} messages). Wait for a turn to finish or remove a queued message.`);
      const queued = toQueued(row);
      await this.refreshQueue();
      return ok({ kind: 'queued', queued_message: queued });
    }
    const resolved = await this.resolve(input.modelConfigId ?? chat.last_model_config_id, input.modelConfigId === null);
    if (!resolved.ok) return resolved;
    const [message] = await this.insertMessages(this.db, resolved.value.config.id, [
      { role: 'user', content: input.content, createdBy: input.userId },
    ]);
    if (!message) throw new Error('insert returned no message');
    this.appendAndPublish([message]);
    await this.startTurn(resolved.value);
    return ok({ kind: 'message', message });
  }

  /** Replaces a user message's content, drops every later message, refreshes subscribers, runs a new turn. */
  async editMessage(input: { messageId: number; content: Part[] }): Promise<RoomResult<Message>> {
    this.holdQueue += 1;
    try {
      if (this.turn) await this.interruptAndWait();
      return await this.lock.run(async () => {
        const chat = await this.loadChat();
        if (!chat) return fail(404, 'Resource not found or you do not have access to this resource');
        const [row] = await getChatMessageById.run({ chat_id: this.chatId, id: String(input.messageId) }, this.db);
        if (!row) return fail(404, 'Resource not found or you do not have access to this resource');
        if (row.role !== 'user') return fail(400, 'Only user messages can be edited.');
        const resolved = await this.resolve(chat.last_model_config_id, true);
        if (!resolved.ok) return resolved;
        const updated = await this.db.inTx(async (tx) => {
          await softDeleteChatMessagesAfter.run({ chat_id: this.chatId, id: String(input.messageId) }, tx);
          await deleteChatSummariesFrom.run({ chat_id: this.chatId, from_id: String(input.messageId) }, tx);
          const [u] = await updateChatMessageContent.run(
            { chat_id: this.chatId, id: String(input.messageId), content: JSON.stringify(input.content) },
            tx,
          );
          return u;
        });
        if (!updated) return fail(404, 'Resource not found or you do not have access to this resource');
        this.summary = undefined;
        await this.fullRefresh();
        await this.startTurn(resolved.value);
        return ok(toMessage(updated));
      });
    } finally {
      this.holdQueue -= 1;
    }
  }

  /** Stops the running turn; its partial text is kept. Returns the status after the request. */
  async interrupt(): Promise<RoomResult<{ status: ChatStatus }>> {
    const chat = await this.lock.run(() => this.loadChat());
    if (!chat) return fail(404, 'Resource not found or you do not have access to this resource');
    if (!this.turn) return ok({ status: chat.status });
    await this.requestInterrupt();
    return ok({ status: 'interrupting' });
  }

  async listQueue(): Promise<RoomResult<QueuedMessage[]>> {
    return await this.lock.run(async () => {
      if (!(await this.loadChat())) return fail(404, 'Resource not found or you do not have access to this resource');
      return ok(await this.loadQueue());
    });
  }

  async deleteQueued(id: string): Promise<RoomResult<null>> {
    return await this.lock.run(async () => {
      if (!(await this.loadChat())) return fail(404, 'Resource not found or you do not have access to this resource');
      const rows = await deleteQueuedMessage.run({ chat_id: this.chatId, id }, this.db);
      if (rows.length === 0) return fail(404, 'Resource not found or you do not have access to this resource');
      await this.refreshQueue();
      return ok(null);
    });
  }

  /**
   * Moves a queued message to the front. When the chat is idle it runs at once (`message`); otherwise it is
   * next (`queued`).
   */
  async promoteQueued(id: string): Promise<RoomResult<PostResult>> {
    return await this.lock.run(async () => {
      const chat = await this.loadChat();
      if (!chat) return fail(404, 'Resource not found or you do not have access to this resource');
      const [row] = await promoteQueuedMessage.run({ chat_id: this.chatId, id }, this.db);
      if (!row) return fail(404, 'Resource not found or you do not have access to this resource');
      if (this.turn) {
        await this.refreshQueue();
        return ok({ kind: 'queued', queued_message: toQueued(row) });
      }
      const started = await this.runNextQueued();
      if (!started) {
        await this.refreshQueue();
        return fail(400, NO_MODEL_MESSAGE);
      }
      return ok({ kind: 'message', message: started });
    });
  }

  /** The chat was deleted: stop work, close sockets, forget everything. */
  async purge(): Promise<void> {
    this.gone = true;
    this.turn?.abort.abort();
    await this.lock.run(async () => {
      for (const ws of this.ctx.getWebSockets()) {
        try {
          ws.close(4404, 'chat deleted');
        } catch {
          // already closed
        }
      }
      this.attachments.clear();
      this.takePendingParts();
      this.cache.clear();
      this.chat = null;
      this.queue = null;
      this.dropPinnedContext();
      const id = this.chatIdOrEmpty();
      await this.ctx.storage.deleteAlarm();
      await this.ctx.storage.deleteAll();
      if (id) this.ctx.storage.kv.put('chat_id', id);
      await this.dbConn?.close();
      this.dbConn = null;
    });
  }

  /** Cache and fan-out counters (for the scale test and the owners' metrics route). */
  stats(): RoomStats {
    return { ...this.counters, sockets: this.ctx.getWebSockets().length, cached: this.cache.size, compactions: this.compactions };
  }

  /** The last finished turn's outcome (final text, resolved model): reused by notifications and tests. */
  outcome(): TurnOutcome | null {
    return this.lastOutcome;
  }

  /** Resolves when no turn is running (for tests and the scale test's shutdown). */
  async idle(): Promise<ChatStatus | null> {
    while (this.turn) await this.turn.done;
    return (await this.lock.run(() => this.loadChat()))?.status ?? null;
  }

  // ------------------------------------------------------------------ stream

  /** The stream: the Worker has authenticated and checked ownership; it passes the user and `after_id`. */
  override async fetch(request: Request): Promise<Response> {
    const params = z
      .object({ userId: z.string().min(1), afterId: z.coerce.number().int().nonnegative() })
      .safeParse({ userId: request.headers.get('x-chatd-user'), afterId: request.headers.get('x-chatd-after-id') });
    if (request.headers.get('upgrade')?.toLowerCase() !== 'websocket' || !params.success) {
      return new Response('expected a WebSocket upgrade from the Worker', { status: 400 });
    }
    const pair = new WebSocketPair();
    const [client, server] = [pair[0], pair[1]];
    this.ctx.acceptWebSocket(server);
    await this.lock.run(async () => {
      const chat = await this.loadChat();
      if (!chat) {
        server.close(4404, 'chat not found');
        return;
      }
      const afterId = params.data.afterId;
      const events: StreamEvent[] = [];
      const missed = await this.catchUp(afterId);
      for (const m of missed) events.push({ type: 'message', chat_id: this.chatId, message: m });
      events.push(this.statusEvent(chat));
      events.push({ type: 'queue_update', chat_id: this.chatId, queued_messages: await this.loadQueue() });
      // Parts still waiting to be sent go to the other sockets now (this one has no attachment yet, so it is
      // skipped): the catch-up below then holds every part so far and nothing is sent to it twice.
      this.flushParts();
      if (this.turn) {
        for (const p of this.turn.parts) {
          events.push({ type: 'message_part', chat_id: this.chatId, message_part: { role: 'assistant', part: p.part, seq: p.seq } });
        }
      }
      const att: Attachment = { userId: params.data.userId, lastId: Math.max(afterId, missed.at(-1)?.id ?? 0) };
      this.setAttachment(server, att);
      this.sendTo(server, events);
    });
    return new Response(null, { status: 101, webSocket: client });
  }

  override webSocketMessage(ws: WebSocket, message: string | ArrayBuffer): void {
    let frame: unknown = null;
    try {
      frame = typeof message === 'string' ? JSON.parse(message) : null;
    } catch {
      frame = null;
    }
    if (!ClientFrame.safeParse(frame).success) {
      this.attachments.delete(ws);
      ws.close(1008, 'unsupported frame: the stream accepts only {"type":"ping"}');
    }
  }

  override webSocketClose(ws: WebSocket, code: number): void {
    this.attachments.delete(ws);
    try {
      ws.close(code === 1005 || code === 1006 ? 1000 : code, 'closing');
    } catch {
      // already closed
    }
  }

  override webSocketError(ws: WebSocket): void {
    this.attachments.delete(ws);
  }

  // ------------------------------------------------------------------ heartbeat and recovery

  /** The heartbeat while a turn runs; recovers a chat left `running` by a runner that vanished. */
  override async alarm(): Promise<void> {
    if (this.gone) return;
    if (this.turn) {
      await this.ctx.storage.setAlarm(Date.now() + HEARTBEAT_MS);
      return;
    }
    await this.lock.run(async () => {
      await this.loadChat();
    });
  }

  // ------------------------------------------------------------------ internals

  /** The chat row (cached); on first load, a chat left running by a vanished runner is recovered. */
  private async loadChat(): Promise<Chat | null> {
    if (this.gone) return null;
    if (this.chat) return this.chat;
    const [row] = await getChatById.run({ id: this.chatId }, this.db);
    if (!row) return null;
    this.chat = toChat(row);
    if ((this.chat.status === 'running' || this.chat.status === 'interrupting') && !this.turn) {
      // Nothing runs here: the object was evicted or crashed mid-turn. Never leave the chat running.
      await this.setStatus('error', INTERRUPTED);
      this.publish([{ type: 'error', chat_id: this.chatId, error: INTERRUPTED }]);
    }
    return this.chat;
  }

  private async resolve(configId: string | null, fallback: boolean): Promise<RoomResult<ResolvedModel>> {
    try {
      const r = await resolveModelCached(this.db, configId);
      if (configId !== null && !fallback && !r.requested) return fail(400, 'The requested model config is not available (unknown, disabled or deleted).');
      return ok(r);
    } catch (e) {
      if (e instanceof NoModelError) {
        return fail(400, configId !== null && !fallback ? 'The requested model config is not available (unknown, disabled or deleted).' : NO_MODEL_MESSAGE);
      }
      throw e;
    }
  }

  private async insertMessages(
    conn: Db | Parameters<Parameters<Db['inTx']>[0]>[0],
    modelConfigId: string | null,
    ms: { role: Role; content: readonly unknown[]; createdBy: string | null; usage?: Usage }[],
  ): Promise<Message[]> {
    const rows = await insertChatMessages.run(
      {
        chat_id: this.chatId,
        model_config_id: modelConfigId,
        roles: ms.map((m) => m.role),
        contents: ms.map((m) => JSON.stringify(m.content)),
        created_bys: ms.map((m) => m.createdBy ?? ''),
        usages: ms.map((m) => JSON.stringify(m.usage ?? null)),
      },
      conn,
    );
    const out = rows.map(toMessage).sort((a, b) => a.id - b.id);
    if (this.chat && modelConfigId !== null) this.chat.last_model_config_id = modelConfigId;
    return out;
  }

  private appendAndPublish(ms: Message[]): void {
    this.cache.append(ms);
    this.publish(ms.map((m) => ({ type: 'message' as const, chat_id: this.chatId, message: m })));
  }

  /** Messages after `afterId`: from the cache when it covers them, else one Postgres read that fills it. */
  private async catchUp(afterId: number): Promise<Message[]> {
    const cached = this.cache.after(afterId);
    if (cached) {
      this.counters.cacheCatchups += 1;
      return cached;
    }
    this.counters.dbCatchups += 1;
    const rows = (await getChatMessagesByChatId.run({ chat_id: this.chatId, after_id: String(afterId) }, this.db)).map(toMessage);
    this.cache.fill(afterId, rows);
    return rows;
  }

  /** After an edit: re-read the live history from Postgres (never the cache) and replace every client's copy. */
  private async fullRefresh(): Promise<void> {
    const all = (await getChatMessagesByChatId.run({ chat_id: this.chatId, after_id: '0' }, this.db)).map(toMessage);
    this.cache.replace(all);
    this.counters.fullRefreshes += 1;
    this.flushParts();
    const lastId = all.at(-1)?.id ?? 0;
    for (const ws of this.ctx.getWebSockets()) {
      const att = this.attachment(ws);
      if (!att) continue;
      this.setAttachment(ws, { ...att, lastId });
      this.sendTo(ws, [{ type: 'full_refresh', chat_id: this.chatId, messages: all }]);
    }
  }

  private async loadQueue(): Promise<QueuedMessage[]> {
    if (this.queue) return this.queue;
    this.queue = (await getQueuedMessages.run({ chat_id: this.chatId }, this.db)).map(toQueued);
    return this.queue;
  }

  private async refreshQueue(): Promise<void> {
    this.queue = null;
    const q = await this.loadQueue();
    this.publish([{ type: 'queue_update', chat_id: this.chatId, queued_messages: q }]);
  }

  private statusEvent(chat: Chat): StreamEvent {
    return {
      type: 'status',
      chat_id: this.chatId,
      status: chat.last_error ? { status: chat.status, last_error: chat.last_error } : { status: chat.status },
    };
  }

  private async setStatus(status: ChatStatus, lastError: LastError | null): Promise<void> {
    const [row] = await updateChatStatus.run({ id: this.chatId, status, last_error: lastError ? JSON.stringify(lastError) : null }, this.db);
    if (!row) return;
    this.chat = toChat(row);
    this.publish([this.statusEvent(this.chat)]);
  }

  // ------------------------------------------------------------------ fan-out

  private attachment(ws: WebSocket): Attachment | null {
    const known = this.attachments.get(ws);
    if (known) return known;
    const parsed = Attachment.safeParse(ws.deserializeAttachment());
    if (!parsed.success) return null;
    this.attachments.set(ws, parsed.data);
    return parsed.data;
  }

  private setAttachment(ws: WebSocket, att: Attachment): void {
    this.attachments.set(ws, att);
    ws.serializeAttachment(att);
  }

  /**
   * Sends one frame to every subscriber; durable messages a socket already has are not sent again. Parts still
   * waiting are sent first, in the same frame, so events keep their order.
   */
  private publish(events: StreamEvent[]): void {
    this.fanOut(this.pendingParts.length > 0 ? [...this.takePendingParts(), ...events] : events);
  }

  /** Sends the waiting `message_part` events now. */
  private flushParts(): void {
    this.fanOut(this.takePendingParts());
  }

  /** The waiting `message_part` events, handed over once: the flush timer is cancelled. */
  private takePendingParts(): StreamEvent[] {
    if (this.flushTimer !== undefined) clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    const parts = this.pendingParts;
    this.pendingParts = [];
    return parts;
  }

  private fanOut(events: StreamEvent[]): void {
    if (events.length === 0) return;
    for (const ws of this.ctx.getWebSockets()) {
      const att = this.attachment(ws);
      if (!att) continue;
      let lastId = att.lastId;
      const frame = events.filter((e) => {
        if (e.type !== 'message') return true;
        if (e.message.id <= lastId) return false;
        lastId = e.message.id;
        return true;
      });
      if (lastId !== att.lastId) this.setAttachment(ws, { ...att, lastId });
      this.sendTo(ws, frame);
    }
  }

  private sendTo(ws: WebSocket, events: StreamEvent[]): void {
    if (events.length === 0) return;
    try {
      ws.send(JSON.stringify(events));
    } catch {
      // A dead socket never holds up the others.
      this.attachments.delete(ws);
      try {
        ws.close(1011, 'send failed');
      } catch {
        // already closed
      }
    }
  }

  // ------------------------------------------------------------------ turns

  /** Called inside the lock: marks the chat running and starts the model call in the background. */
  private async startTurn(resolved: ResolvedModel): Promise<void> {
    await this.setStatus('running', null);
    const turn: Turn = { abort: new AbortController(), parts: [], seq: 0, done: Promise.resolve(), resolved };
    this.turn = turn;
    await this.ctx.storage.setAlarm(Date.now() + HEARTBEAT_MS);
    turn.done = this.runTurn(turn).catch((e: unknown) => {
      console.error(JSON.stringify({ level: 'error', msg: 'turn crashed', chat_id: this.chatId, error: String(e) }));
    });
    this.ctx.waitUntil(turn.done);
  }

  private async runTurn(turn: Turn): Promise<void> {
    let result: ModelResult | null = null;
    let failure: ModelError | null = null;
    try {
      const s = settings(this.env);
      const apiKey = await this.openApiKey(turn.resolved);
      const prompt = await this.promptFor(turn, apiKey);
      result = await callModel({
        resolved: turn.resolved,
        apiKey,
        system: prompt.system,
        messages: prompt.messages,
        signal: turn.abort.signal,
        onDelta: (d) => {
          this.publishPart(turn, d);
        },
        idleTimeoutMs: s.LLM_IDLE_TIMEOUT_MS,
        maxRetries: s.LLM_MAX_RETRIES,
      });
    } catch (e) {
      failure = e instanceof ModelError ? e : new ModelError('network', 'The turn failed unexpectedly.');
      if (!(e instanceof ModelError)) console.error(JSON.stringify({ level: 'error', msg: 'turn failed', chat_id: this.chatId, error: String(e) }));
    }
    await this.lock.run(() => this.finishTurn(turn, result, failure));
  }

  private async openApiKey(resolved: ResolvedModel): Promise<string | null> {
    const sealed = resolved.provider.api_key;
    if (!sealed) return null;
    try {
      const ring = await keyRing(this.env.PROVIDER_KEY_ENCRYPTION_KEY);
      return await ring.open(sealed, sealBinding(resolved.provider.id));
    } catch (e) {
      console.error(JSON.stringify({ level: 'error', msg: 'cannot open provider key', provider: resolved.provider.provider, error: String(e) }));
      throw new ModelError('config', "The provider's API key cannot be decrypted on this deployment.");
    }
  }

  /**
   * The prompt for a turn; compacts first when the context has reached the model's threshold. A failed
   * compaction is logged and the turn goes on with the full history.
   */
  private async promptFor(turn: Turn, apiKey: string | null): Promise<Prompt> {
    const history = await this.historyForModel();
    if (this.summary === undefined) {
      const [row] = await getLatestChatSummary.run({ chat_id: this.chatId }, this.db);
      this.summary = row ? { throughId: Number(row.through_message_id), content: row.content } : null;
    }
    const cfg = turn.resolved.config;
    const withContext = await this.withPinnedContext(history, cfg.context_limit);
    let prompt = buildPrompt(withContext, this.summary);
    if (!shouldCompact(contextTokens(prompt, history, this.summary), cfg.context_limit, cfg.compression_threshold)) return prompt;
    const plan = compactionPlan(history, this.summary);
    if (!plan) return prompt;
    try {
      const s = settings(this.env);
      const request = summaryRequest(plan.fold, this.summary);
      const r = await callModel({
        resolved: turn.resolved,
        apiKey,
        system: request.system,
        messages: request.messages,
        signal: turn.abort.signal,
        onDelta: () => undefined,
        idleTimeoutMs: s.LLM_IDLE_TIMEOUT_MS,
        maxRetries: s.LLM_MAX_RETRIES,
      });
      if (r.finishReason === 'aborted' || !r.text.trim()) return prompt;
      await insertChatSummary.run(
        {
          chat_id: this.chatId,
          through_message_id: String(plan.through),
          content: r.text,
          model_config_id: cfg.id,
          input_tokens: String(r.usage.input_tokens),
          output_tokens: String(r.usage.output_tokens),
        },
        this.db,
      );
      this.summary = { throughId: plan.through, content: r.text };
      this.compactions += 1;
      prompt = buildPrompt(withContext, this.summary);
    } catch (e) {
      console.error(JSON.stringify({ level: 'warn', msg: 'compaction failed; using the full history', chat_id: this.chatId, error: String(e) }));
    }
    return prompt;
  }

  /**
   * The history with the pinned context as one more system message after the chat's own system messages (the
   * deployment system prompt), so buildPrompt puts it right after them and before any summary. The pinned
   * rows are read once per object life (none for a chat without an agent) and kept until a re-pin.
   */
  private async withPinnedContext(history: Message[], contextLimit: number): Promise<Message[]> {
    let items = this.pinnedContext;
    if (items === undefined) {
      const generation = this.pinnedGeneration;
      // The row may have been dropped (refresh()) since the turn started: read it again rather than guess.
      const chat = this.chat ?? (await this.lock.run(() => this.loadChat()));
      items = chat?.agent_id ? promptContextItems(await getChatPromptContext.run({ chat_id: this.chatId }, this.db)) : [];
      if (generation === this.pinnedGeneration) this.pinnedContext = items;
    }
    const text = renderPromptContext(items, contextLimit);
    if (!text) return history;
    const context: Message = {
      id: 0,
      chat_id: this.chatId,
      role: 'system',
      content: [{ type: 'text', text }],
      model_config_id: null,
      created_at: new Date(0).toISOString(),
    };
    const system = history.filter((m) => m.role === 'system');
    return [...system, context, ...history.filter((m) => m.role !== 'system')];
  }

  private dropPinnedContext(): void {
    this.pinnedContext = undefined;
    this.pinnedGeneration += 1;
  }

  /** The whole live history, from the cache when it holds all of it. */
  private async historyForModel(): Promise<Message[]> {
    const cached = this.cache.history();
    if (cached) return cached;
    this.counters.historyReads += 1;
    const all = (await getChatMessagesByChatId.run({ chat_id: this.chatId, after_id: '0' }, this.db)).map(toMessage);
    // Keep what was read: a cold object reads its history once, not again on every later turn.
    this.cache.fill(0, all);
    return all;
  }

  private publishPart(turn: Turn, d: ModelDelta): void {
    if (this.turn !== turn) return;
    const part: Part = { type: d.type, text: d.text };
    const seq = turn.seq++;
    turn.parts.push({ part, seq });
    const event: StreamEvent = { type: 'message_part', chat_id: this.chatId, message_part: { role: 'assistant', part, seq } };
    const flushMs = settings(this.env).STREAM_FLUSH_MS;
    // The first part goes out at once (time to first token); later ones are batched into one frame per
    // flushMs: one JSON frame and one send per socket instead of one per delta.
    if (seq === 0 || flushMs === 0) {
      this.publish([event]);
      return;
    }
    this.pendingParts.push(event);
    this.flushTimer ??= setTimeout(() => {
      this.flushTimer = undefined;
      this.flushParts();
    }, flushMs);
  }

  /** Inside the lock: persist what the turn produced, settle the status, and run the next queued message. */
  private async finishTurn(turn: Turn, result: ModelResult | null, failure: ModelError | null): Promise<void> {
    if (this.turn !== turn) return;
    this.turn = null;
    if (this.gone) return;
    const text = result?.text ?? failure?.partial.text ?? '';
    const reasoning = result?.reasoning ?? failure?.partial.reasoning ?? '';
    const content: Part[] = [];
    if (reasoning) content.push({ type: 'reasoning', text: reasoning });
    if (text || (result && result.finishReason !== 'aborted' && !reasoning)) content.push({ type: 'text', text });
    try {
      if (content.length > 0) {
        const usage = result && result.finishReason !== 'aborted' ? result.usage : undefined;
        const ms = await this.insertMessages(this.db, turn.resolved.config.id, [
          { role: 'assistant', content, createdBy: null, ...(usage ? { usage } : {}) },
        ]);
        this.appendAndPublish(ms);
      }
      if (failure) {
        const error: LastError = { message: failure.message, kind: failure.kind };
        this.publish([{ type: 'error', chat_id: this.chatId, error }]);
        await this.setStatus('error', error);
        this.lastOutcome = { status: 'error', finalText: text, error, resolved: turn.resolved };
        this.notifyOwner(text, true);
        return;
      }
      this.lastOutcome = { status: 'waiting', finalText: text, error: null, resolved: turn.resolved };
      if (this.holdQueue === 0 && (await this.runNextQueued())) return;
      await this.setStatus('waiting', null);
      this.notifyOwner(text, false);
    } catch (e) {
      if (pgErrorCode(e) === '23503') {
        // The chat was deleted under the turn: nothing to keep.
        this.gone = true;
        return;
      }
      throw e;
    } finally {
      if (!this.running()) await this.ctx.storage.deleteAlarm();
    }
  }

  /** Inside the lock: takes the next queued message, inserts it, starts its turn. Null when none could run. */
  private async runNextQueued(): Promise<Message | null> {
    // This object is the queue's only writer: a queue it knows to be empty needs no Postgres round trip.
    if (this.queue?.length === 0) return null;
    for (;;) {
      const [row] = await popQueuedMessage.run({ chat_id: this.chatId }, this.db);
      if (!row) return null;
      const q = toQueued(row);
      const chat = await this.loadChat();
      const resolved = await this.resolve(q.model_config_id ?? chat?.last_model_config_id ?? null, true);
      if (!resolved.ok) {
        await this.refreshQueue();
        return null;
      }
      const [message] = await this.insertMessages(this.db, resolved.value.config.id, [
        { role: 'user', content: q.content, createdBy: row.created_by },
      ]);
      if (!message) continue;
      await this.refreshQueue();
      this.appendAndPublish([message]);
      await this.startTurn(resolved.value);
      return message;
    }
  }

  /**
   * After the status is published: push the turn's end to the chat's owner, in the background, from what the
   * turn already holds (its final text, the chat row), with no Postgres read here.
   */
  private notifyOwner(finalText: string, failed: boolean): void {
    const chat = this.chat;
    if (!chat) return;
    const ownerWatching = this.ctx.getWebSockets().some((ws) => this.attachment(ws)?.userId === chat.owner_id);
    this.ctx.waitUntil(
      notifyTurnEnd(this.env, { chatId: this.chatId, ownerId: chat.owner_id, title: chat.title, finalText, failed, ownerWatching }),
    );
  }

  /** Whether a turn runs now (a method, so callers re-read the field after awaits). */
  private running(): boolean {
    return this.turn !== null;
  }

  private async requestInterrupt(): Promise<void> {
    const turn = this.turn;
    if (!turn || turn.abort.signal.aborted) return;
    await this.lock.run(async () => {
      if (this.turn === turn) await this.setStatus('interrupting', null);
    });
    turn.abort.abort();
  }

  private async interruptAndWait(): Promise<void> {
    const turn = this.turn;
    if (!turn) return;
    await this.requestInterrupt();
    await turn.done;
  }
}
