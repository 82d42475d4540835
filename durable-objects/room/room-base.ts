/**
 * The runtime side of a chat's object: it wires the parts together (state, store, stream hub, turn runner and
 * lifecycle, outbox), owns the lock, and answers the runtime's entry points (the stream upgrade, socket events,
 * the alarm). `ChatRoom` adds the chat's RPC surface on top.
 */
import { DurableObject } from 'cloudflare:workers';
import { z } from 'zod';
import { chatAccess, ownsChat, type ChatActor } from '../../functions/core/access';
import { Db, isTransient } from '../../functions/core/db';
import { log } from '../../functions/core/log';
import { DB_UNAVAILABLE, fail, NOT_FOUND, ok, type PostResult, type RoomResult } from '../../functions/core/room-api';
import { dbSettings, settings } from '../../functions/core/settings';
import type { Chat, Message, Part } from '../../functions/core/chats';
import type { ResolvedModel } from '../../functions/core/model-resolve';
import { Budget } from './budget';
import { ChatState, storedChat } from './chat-state';
import { ChatStore } from './chat-store';
import { ChatWriter } from './chat-writer';
import { refusal, RULES, STREAM_RULE, type GuardedMethod } from './guard';
import { Mutex } from './mutex';
import { Outbox } from './outbox';
import { OutboxWriter } from './outbox-writer';
import { QueueRunner } from './queue-runner';
import { Replies } from './replies';
import { StreamHub } from './stream-hub';
import { StreamCredential, Tickets, TICKET_REFUSED } from './tickets';
import { partsOf } from './turn';
import { TurnRunner } from './turn-runner';
import { Toolbox } from './toolbox';
import { Turns } from './turns';
import { Titles } from './titles';
import { AlarmClock } from './alarm-clock';
import { streamRegistryName } from '../../functions/core/key-shards';

export abstract class RoomBase extends DurableObject<Env> {
  protected dbConn: Db | null = null;
  protected knownChatId: string | null = null;
  protected readonly lock = new Mutex();
  protected readonly hub: StreamHub;
  protected readonly store: ChatStore;
  protected readonly state: ChatState;
  protected readonly writer: ChatWriter;
  protected readonly runner: TurnRunner;
  protected readonly turns: Turns;
  protected readonly outbox: Outbox;
  protected readonly replies = new Replies<PostResult>();
  protected readonly clock: AlarmClock;
  protected readonly toolbox: Toolbox;
  protected readonly budget: Budget;
  protected readonly tickets: Tickets;
  protected readonly titles: Titles;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    const s = settings(env);
    const chatId = this.chatId;
    const db = this.db;
    this.clock = new AlarmClock(ctx.storage);
    this.budget = new Budget(env);
    this.hub = new StreamHub(ctx, s.STREAM_FLUSH_MS);
    this.store = new ChatStore(chatId, db);
    this.outbox = new Outbox(ctx.storage.sql);
    this.toolbox = new Toolbox({ db, settings: s, encryptionKey: env.PROVIDER_KEY_ENCRYPTION_KEY, chatId });
    this.tickets = new Tickets(ctx.storage.kv);
    this.state = new ChatState({ chatId, store: this.store, hub: this.hub, outbox: this.outbox, kv: ctx.storage.kv }, isTransient);
    this.writer = new ChatWriter(chatId, this.state, this.hub);
    this.runner = new TurnRunner({
      chatId,
      db,
      encryptionKey: env.PROVIDER_KEY_ENCRYPTION_KEY,
      idleTimeoutMs: s.LLM_IDLE_TIMEOUT_MS,
      maxRetries: s.LLM_MAX_RETRIES,
      toolbox: this.toolbox,
      files: env.FILES,
    });
    const deps = { chatId, state: this.state, store: this.store, hub: this.hub };
    this.turns = new Turns({
      ...deps,
      env,
      ctx,
      lock: this.lock,
      writer: this.writer,
      outbox: new OutboxWriter({ ...deps, outbox: this.outbox, clock: this.clock, giveUpMs: s.OUTBOX_GIVE_UP_MS }),
      queue: new QueueRunner({ ...deps, writer: this.writer, budget: this.budget }),
      runner: this.runner,
      clock: this.clock,
      budget: this.budget,
    });
    this.turns.onGone = () => this.forgetAll();
    this.titles = new Titles({
      chatId,
      ctx,
      db,
      lock: this.lock,
      state: this.state,
      hub: this.hub,
      budget: this.budget,
      openApiKey: (r) => this.runner.openApiKey(r),
      idleTimeoutMs: s.LLM_IDLE_TIMEOUT_MS,
    });
    this.turns.onAnswer = (text, configId) => {
      this.titles.afterAnswer(text, configId);
    };
  }

  /**
   * The chat id is the object's name. Some invocations (alarms, seen under load) arrive without `ctx.id.name`, so
   * the first named call stores it and later ones fall back to the stored copy.
   */
  protected readonly chatId = (): string => {
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
  };

  protected readonly db = (): Db => {
    this.dbConn ??= new Db(dbSettings(this.env, { durable: true }));
    return this.dbConn;
  };

  // ------------------------------------------------------------------ stream

  /**
   * The stream. The Worker has authenticated the request and passes the actor, or a ticket this object minted
   * (`tickets.ts`: 401 when unknown, expired or used), and `after_id`; this object checks that the chat is theirs
   * (404 before any upgrade), then accepts the socket and sends its first frame.
   */
  override async fetch(request: Request): Promise<Response> {
    const h = (name: string) => request.headers.get(name);
    const ticket = h('x-chatd-ticket');
    const params = z
      .object({ credential: StreamCredential, afterId: z.coerce.number().int().nonnegative() })
      .safeParse({
        credential:
          ticket !== null
            ? { ticket }
            : { userId: h('x-chatd-user'), keyId: h('x-chatd-key') ?? '', keyExpiresAt: h('x-chatd-key-expires'), groupIds: splitIds(h('x-chatd-groups')) },
        afterId: h('x-chatd-after-id'),
      });
    if (!params.success) return Response.json({ message: 'expected a stream request from the Worker' }, { status: 400 });
    const { credential, afterId } = params.data;
    const upgrade = h('upgrade')?.toLowerCase() === 'websocket';
    const notUpgrade = () => Response.json({ message: 'This route is a WebSocket: send an Upgrade: websocket request.' }, { status: 426 });
    try {
      return await this.lock.run(async () => {
        // A ticket is spent only on a request that can use it.
        if ('ticket' in credential && !upgrade) return notUpgrade();
        const who = await this.tickets.holder(credential);
        if (!who) return Response.json({ message: TICKET_REFUSED }, { status: 401 });
        const chat = await this.loadChat();
        const refused = chat ? refusal(STREAM_RULE, { userId: who.userId, roles: [], groupIds: who.groupIds }, chat, this.state.grants) : fail(404, NOT_FOUND);
        if (refused) return Response.json({ message: refused.message }, { status: refused.status });
        if (!upgrade) return notUpgrade();
        const first = await this.state.firstFrame(afterId, () => this.turns.current?.parts ?? (this.state.held ? partsOf(this.state.held) : []));
        const pair = new WebSocketPair();
        this.hub.accept(pair[1]);
        const att = { userId: who.userId, keyId: who.keyId, lastId: first.lastId, expiresAt: who.keyExpiresAt, groupIds: who.groupIds };
        this.hub.attach(pair[1], att, first.events);
        // Closed with 4401 when its credential expires, or (through the user's registry) when it is revoked; with 4403
        // when the user's access ends (`accessChanged`, through the same registry).
        if (who.keyExpiresAt !== null) this.clock.by(who.keyExpiresAt);
        this.ctx.waitUntil(this.registry(who.userId).opened(this.chatId()));
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
    this.left(ws);
    this.hub.closed(ws, code);
  }

  override webSocketError(ws: WebSocket): void {
    this.left(ws);
    this.hub.forget(ws);
  }

  /** A socket is going: when it was its user's last one here, the user's registry forgets this chat. */
  private readonly left = (ws: WebSocket): void => {
    const userId = this.hub.userOf(ws);
    if (userId !== null && !this.hub.stillWatching(userId, ws)) this.ctx.waitUntil(this.registry(userId).closed(this.chatId()));
  };

  /** The user's StreamRegistry: the chats where they have streams open. */
  protected readonly registry = (userId: string) => {
    return this.env.STREAM_REGISTRY.getByName(streamRegistryName(userId));
  };

  // ------------------------------------------------------------------ heartbeat, outbox retries and recovery

  /**
   * The heartbeat while a turn runs, the retries of writes waiting in the outbox, and the recovery of a chat left
   * `running` by a runner that vanished. It never throws: a failure schedules the next try.
   */
  override async alarm(): Promise<void> {
    this.clock.fired();
    if (this.state.gone) return;
    for (const userId of this.hub.closeExpired(Date.now())) {
      if (!this.hub.watching(userId)) this.ctx.waitUntil(this.registry(userId).closed(this.chatId()));
    }
    await this.lock.run(async () => {
      try {
        await this.loadChat();
        await this.turns.onAlarm();
      } catch (e) {
        if (!isTransient(e)) log('error', 'chat alarm failed', { chat_id: this.chatId(), error: String(e) });
        this.state.reset({ keepRow: true });
        this.runner.forget();
      }
    });
    this.turns.afterAlarm();
    const expiry = this.hub.nextExpiry();
    if (expiry !== null) this.clock.by(expiry);
  }

  // ------------------------------------------------------------------ internals

  /**
   * Runs an RPC under the lock. Any error resets what this object holds (the cache, the chat row, the queue), since
   * it may have come after a commit; a database that cannot be reached is a 503 result.
   */
  protected readonly guard = async <T>(fn: () => Promise<RoomResult<T>>): Promise<RoomResult<T>> => {
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
  };

  /** Forget what may be stale; the next call reloads it from Postgres. A running turn and the outbox stay. */
  protected readonly reset = (): void => {
    this.state.reset();
    this.runner.forget();
  };

  /**
   * An RPC method's body, once the method's rule (`guard.ts`) allows the actor on the chat: under the lock, with the
   * chat loaded. The rule is looked up by the method's name, so a method cannot choose a laxer one.
   */
  protected readonly call = async <T>(method: GuardedMethod, actor: ChatActor, body: (chat: Chat) => Promise<RoomResult<T>>): Promise<RoomResult<T>> => {
    return await this.guard(async () => {
      const chat = await this.loadChat();
      if (!chat) return fail(404, NOT_FOUND);
      return refusal(RULES[method], actor, chat, this.state.grants) ?? (await body(chat));
    });
  };

  /**
   * The chat row. A first load by this life of the object settles what an earlier one left: writes waiting in the
   * outbox are retried, a turn left running by a runner that vanished is recovered.
   */
  protected readonly loadChat = async (): Promise<Chat | null> => {
    const cold = this.state.loaded === null;
    const chat = await this.state.load();
    if (!chat || !cold) return chat;
    await this.turns.settle(chat);
    this.titles.resume();
    return this.state.loaded;
  };

  /** The chat as an actor allowed to read it sees it: `access` says whether they own it or view it. */
  protected readonly seenBy = (actor: ChatActor, chat: Chat): Chat => ({
    ...chat,
    access: chatAccess(actor, chat, this.state.grants) === 'owner' ? 'owner' : 'viewer',
  });

  /**
   * Access to the chat changed: the grants are read again with the row, `user`'s sockets take their new groups, and
   * every socket whose user can no longer read the chat closes with 4403. When the row cannot be read (Postgres
   * down), only the owner's sockets stay: access is never kept on a guess.
   */
  protected readonly endLostAccess = async (user: { userId: string; groupIds: string[] } | null): Promise<number> => {
    return await this.lock.run(async () => {
      if (user) this.hub.regroup(user.userId, user.groupIds);
      const before = this.state.loaded;
      this.state.dropRow();
      let keeps: (att: { userId: string; groupIds: string[] }) => boolean;
      try {
        const chat = await this.loadChat();
        keeps = (att) => chat !== null && chatAccess({ userId: att.userId, roles: [], groupIds: att.groupIds }, chat, this.state.grants) !== null;
      } catch (e) {
        if (!isTransient(e)) throw e;
        this.reset();
        keeps = (att) => before !== null && att.userId === before.owner_id;
      }
      const gone = new Set<string>();
      const n = this.hub.closeWhere(
        (att) => {
          const close = !keeps(att);
          if (close) gone.add(att.userId);
          return close;
        },
        4403,
        'access revoked',
      );
      for (const userId of gone) if (!this.hub.watching(userId)) this.ctx.waitUntil(this.registry(userId).closed(this.chatId()));
      return n;
    });
  };

  /**
   * The edit path (an edit, a regenerate): every message after `messageId` goes, its content is replaced (null: kept),
   * the chat runs, subscribers get `full_refresh` and the status, and a turn starts on `resolved`. Null when the
   * message is gone.
   */
  protected readonly rewind = async (chat: Chat, messageId: number, content: Part[] | null, resolved: ResolvedModel): Promise<Message | null> => {
    const kept = await this.store.rewind(messageId, content);
    if (!kept) return null;
    this.runner.forget();
    this.state.set({ ...chat, status: 'running', last_error: null });
    await this.state.fullRefresh();
    this.hub.publish([this.state.statusEvent()]);
    this.turns.start(resolved);
    return kept;
  };

  protected readonly replayCreate = (actor: ChatActor, chat: Chat): RoomResult<Chat> => {
    if (!ownsChat(actor, chat)) return fail(409, 'This Idempotency-Key was already used for another request.');
    return ok(storedChat(this.ctx.storage.kv, 'create_reply') ?? chat);
  };

  /** Everything this object holds goes: the chat was deleted. */
  protected readonly forgetAll = async (): Promise<void> => {
    this.state.gone = true;
    this.turns.drop();
    this.state.held = null;
    this.hub.closeAll(4404, 'chat deleted');
    this.reset();
    this.replies.clear();
    const id = this.knownChatId ?? this.ctx.id.name ?? null;
    await this.ctx.storage.deleteAlarm();
    this.clock.fired();
    await this.ctx.storage.deleteAll();
    this.outbox.wiped();
    if (id) this.ctx.storage.kv.put('chat_id', id);
    await this.dbConn?.close();
    this.dbConn = null;
    await this.toolbox.mcp.closeAll();
  };
}

/** A comma-separated list of ids from a header the Worker set (empty or absent: none). */
function splitIds(v: string | null): string[] {
  return v ? v.split(',') : [];
}
