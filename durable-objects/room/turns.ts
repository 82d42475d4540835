/**
 * The lifecycle of a chat's turns, inside the room's lock: start one (at most one at a time), stream its parts,
 * stop it, write its ending (or keep it in the outbox when Postgres cannot take it, and retry until it can), and run
 * the next queued message. The alarm that beats while a turn runs and retries the outbox is scheduled here.
 */
import { isTransient, pgErrorCode } from '../../functions/lib/db';
import { ok, type RoomFailure, type RoomResult, type StreamEvent, type TurnOutcome } from '../../functions/lib/room-api';
import type { ModelDelta } from '../../functions/llm/model';
import type { ResolvedModel } from '../../functions/services/chat-models';
import type { LastError, Message, Part } from '../../functions/services/chats';
import { notifyTurnEnd } from '../../functions/services/turn-notify';
import type { AlarmClock } from './alarm-clock';
import type { Budget } from './budget';
import type { ChatState } from './chat-state';
import type { ChatStore, Written } from './chat-store';
import type { Mutex } from './mutex';
import type { Outbox } from './outbox';
import type { StreamHub } from './stream-hub';
import { finishEntryOf, type CallOutcome, type FinishEntry, type Turn } from './turn';
import type { TurnRunner } from './turn-runner';

const HEARTBEAT_MS = 15_000;
/** Retries of writes waiting in the outbox: 250 ms, doubling, at most every 3 s; once given up, every minute. */
const RETRY_FIRST_MS = 250;
const RETRY_MAX_MS = 3_000;
const RETRY_AFTER_GIVE_UP_MS = 60_000;
const DB_GAVE_UP: LastError = {
  kind: 'database_unavailable',
  message: 'The database has been unavailable for too long: the answer is kept and will be saved when it answers again.',
};

export interface TurnsDeps {
  chatId: () => string;
  env: Env;
  ctx: DurableObjectState;
  lock: Mutex;
  state: ChatState;
  store: ChatStore;
  hub: StreamHub;
  runner: () => TurnRunner;
  outbox: () => Outbox;
  /** OUTBOX_GIVE_UP_MS */
  giveUpMs: number;
  /** The chat was deleted under a write: forget everything. */
  gone: () => Promise<void>;
  clock: AlarmClock;
  budget: Budget;
}

export class Turns {
  /** The running turn; set and cleared only under the lock. */
  current: Turn | null = null;
  lastOutcome: TurnOutcome | null = null;

  constructor(private readonly deps: TurnsDeps) {}

  /** With the chat already `running` in Postgres: starts the model call in the background. */
  start(resolved: ResolvedModel): void {
    if (this.current) throw new Error('a turn is already running');
    const turn: Turn = { id: crypto.randomUUID(), resolved, abort: new AbortController(), parts: [], call: Promise.resolve({ result: null, failure: null }) };
    this.current = turn;
    this.deps.clock.by(Date.now() + HEARTBEAT_MS);
    turn.call = this.deps.runner().run(turn);
    const done = turn.call
      .then((outcome) => this.deps.lock.run(() => this.complete(turn, outcome, { runQueue: true })))
      .catch((e: unknown) => {
        // After the ending was written (running the next queued message failed): the alarm tries the queue again.
        if (!isTransient(e)) console.error(JSON.stringify({ level: 'error', msg: 'turn completion failed', chat_id: this.deps.chatId(), error: String(e) }));
        this.deps.state.reset({ keepRow: true });
        this.deps.clock.by(Date.now() + RETRY_FIRST_MS);
      });
    this.deps.ctx.waitUntil(done);
  }

  /** A delta of the running turn, kept for sockets that connect later and sent to those connected. */
  part(turn: Turn, d: ModelDelta): void {
    if (this.current !== turn) return;
    const part: Part = { type: d.type, text: d.text };
    const seq = turn.parts.length;
    turn.parts.push({ part, seq });
    this.deps.hub.part({ type: 'message_part', chat_id: this.deps.chatId(), message_part: { role: 'assistant', part, seq } });
  }

  /**
   * Stops the running turn and waits for its call to end; then writes what it produced, or nothing with `discard`
   * (an edit, which drops every message after the edited one and sets the status itself).
   */
  async stop(opts: { runQueue: boolean; discard?: boolean }): Promise<void> {
    const turn = this.current;
    if (!turn) return;
    turn.abort.abort();
    const outcome = await turn.call;
    if (opts.discard === true) {
      if (this.current === turn) this.current = null;
      return;
    }
    await this.complete(turn, outcome, opts);
  }

  /** Forgets the running turn without writing it (the chat was deleted). */
  drop(): void {
    this.current?.abort.abort();
    this.current = null;
  }

  /**
   * Once a turn's call is over: writes its ending (once, whoever comes first: the turn itself, or a request that
   * stopped it), then runs the next queued message.
   */
  async complete(turn: Turn, outcome: CallOutcome, opts: { runQueue: boolean }): Promise<void> {
    if (this.current !== turn) return;
    this.current = null;
    if (this.deps.state.gone) return;
    const entry = finishEntryOf(turn, outcome);
    this.lastOutcome = { status: entry.status, finalText: entry.finalText, error: entry.lastError, modelConfigId: entry.modelConfigId };
    if (this.deps.outbox().size > 0) {
      // Writes keep their order: this one goes behind those already waiting.
      this.defer(entry);
      await this.drain().catch((e: unknown) => {
        if (!isTransient(e)) throw e;
      });
      return;
    }
    let w: Written;
    try {
      w = await this.deps.store.finish(entry);
    } catch (e) {
      if (pgErrorCode(e) === '23503') {
        // The chat was deleted under the turn: nothing to keep.
        await this.deps.gone();
        return;
      }
      // Whatever went wrong, the answer is kept and retried: a write Postgres refuses for good is dropped (and logged)
      // by the drain, never here on a first failure.
      if (!isTransient(e)) console.error(JSON.stringify({ level: 'error', msg: 'writing a turn ending failed', chat_id: this.deps.chatId(), error: String(e) }));
      this.defer(entry);
      return;
    }
    await this.finished(entry, w, opts.runQueue);
  }

  /** A turn's ending is in Postgres: publish it, notify the owner, and run the next queued message. */
  private async finished(entry: FinishEntry, w: Written, runQueue: boolean): Promise<void> {
    const { state, hub } = this.deps;
    const chat = state.loaded ?? (await state.load());
    if (!chat) return;
    state.patch({ status: entry.status, last_error: entry.lastError, updated_at: w.chatUpdatedAt ?? chat.updated_at });
    state.cache.append(w.messages);
    // Reported with the next queued message's spend check, else before the end is published.
    this.deps.budget.spent(w.messages, entry.cost !== null && entry.content.length > 0);
    const events: StreamEvent[] = w.messages.map((m) => ({ type: 'message', chat_id: this.deps.chatId(), message: m }));
    if (entry.lastError) events.push({ type: 'error', chat_id: this.deps.chatId(), error: entry.lastError });
    // After a failure the queue pauses; otherwise its next message runs at once, and `waiting` is not published.
    const next = entry.status === 'waiting' && runQueue ? await this.runNextQueued(events) : null;
    await this.deps.budget.flush(chat.owner_id);
    if (next?.ok && next.value) return;
    hub.publish([...events, state.statusEvent()]);
    this.notifyOwner(entry);
  }

  /** Postgres could not take a turn's ending: keep it in the outbox, show it, and retry with backoff. */
  private defer(entry: FinishEntry): void {
    const { state, hub } = this.deps;
    this.deps.outbox().push(entry);
    state.held = entry;
    if (state.loaded) {
      state.snapshot();
      state.patch({});
      hub.publish([state.statusEvent()]);
    }
    console.error(JSON.stringify({ level: 'warn', msg: 'turn ending kept in the outbox until the database answers', chat_id: this.deps.chatId() }));
    this.retryLater();
  }

  /**
   * Applies the outbox in order; an entry leaves it only once Postgres committed it (a replay after a lost reply
   * changes nothing: each carries its turn's idempotency key). Throws when Postgres still cannot take them.
   */
  async drain(): Promise<void> {
    const outbox = this.deps.outbox();
    if (outbox.size === 0) return;
    const { state } = this.deps;
    for (const item of outbox.all()) {
      let w: Written;
      try {
        w = await this.deps.store.finish(item.entry);
      } catch (e) {
        if (pgErrorCode(e) === '23503') {
          await this.deps.gone();
          return;
        }
        if (isTransient(e)) {
          outbox.failed(item.seq);
          throw e;
        }
        // Postgres refuses it for good (it could never be applied): keep going with the rest.
        console.error(JSON.stringify({ level: 'error', msg: 'dropping an outbox entry Postgres refuses', chat_id: this.deps.chatId(), error: String(e) }));
        outbox.remove(item.seq);
        continue;
      }
      outbox.remove(item.seq);
      const last = outbox.size === 0;
      if (last) {
        state.held = null;
        state.dropSnapshot();
      }
      await this.finished(item.entry, w, last);
    }
  }

  /**
   * With no turn running: the queue's first message becomes the next user message and its turn starts. Its model is
   * resolved first, and taking it out of the queue and inserting it is one statement, so a failure loses nothing.
   * `events` (a finished turn's) are published before it. Null when the queue is empty.
   */
  async runNextQueued(events: StreamEvent[] = []): Promise<RoomResult<Message | null>> {
    const { state, store } = this.deps;
    // This object is the queue's only writer: a queue it knows to be empty needs no Postgres round trip.
    const [head] = await state.loadQueue();
    if (!head) return ok(null);
    const resolved = await store.resolve(head.model_config_id ?? state.view().last_model_config_id, true);
    if (!resolved.ok) return await this.pause(resolved, { kind: 'config', message: resolved.message }, events);
    const refused = await this.deps.budget.refusal(state.view().owner_id, resolved.value);
    if (refused) {
      const when = refused.detail ?? 'the end of the period';
      return await this.pause(refused, { kind: 'spend_limit', message: `${refused.message} It resets at ${when}.` }, events);
    }
    const w = await store.runQueued(head.id, resolved.value.config.id);
    const queue = state.took(head.id);
    const [message] = w.messages;
    if (!message) {
      await state.refreshQueue();
      return ok(null);
    }
    state.wrote(w, { status: 'running', last_error: null, last_model_config_id: resolved.value.config.id }, [
      ...events,
      { type: 'queue_update', chat_id: this.deps.chatId(), queued_messages: queue },
    ]);
    this.start(resolved.value);
    return ok(message);
  }

  /** The queue's next message cannot run: the chat shows `error` and the queue pauses (the message stays first). */
  private async pause(failure: RoomFailure, error: LastError, events: StreamEvent[]): Promise<RoomFailure> {
    const { state, store, hub } = this.deps;
    const row = await store.setStatus('error', error);
    if (row) state.set(row);
    hub.publish([...events, { type: 'error', chat_id: this.deps.chatId(), error }, state.statusEvent()]);
    return failure;
  }

  /**
   * After the status is published: push the turn's end to the chat's owner, in the background, from what the turn
   * already holds (its final text, the chat row), with no Postgres read here.
   */
  private notifyOwner(entry: FinishEntry): void {
    const chat = this.deps.state.loaded;
    if (!chat) return;
    this.deps.ctx.waitUntil(
      notifyTurnEnd(this.deps.env, {
        chatId: this.deps.chatId(),
        ownerId: chat.owner_id,
        title: chat.title,
        finalText: entry.finalText,
        failed: entry.status === 'error',
        ownerWatching: this.deps.hub.watching(chat.owner_id),
      }),
    );
  }

  // ------------------------------------------------------------------ the alarm

  /** The alarm's work, under the lock: the outbox first, then a queued message that should be running and is not. */
  async onAlarm(): Promise<void> {
    if (this.deps.outbox().size > 0) await this.drain();
    const chat = await this.deps.state.load();
    if (chat && !this.current && chat.status === 'waiting' && this.deps.outbox().size === 0) await this.runNextQueued();
  }

  /** What the alarm does after its work: beat again while a turn runs, retry while the outbox holds writes. */
  afterAlarm(): void {
    if (this.deps.outbox().size > 0) this.retryLater();
    else if (this.current) this.deps.clock.by(Date.now() + HEARTBEAT_MS);
  }

  /** Schedules the next try of the outbox with backoff; past the give-up time the chat is shown as `error`. */
  retryLater(): void {
    const [first] = this.deps.outbox().all();
    if (!first) return;
    const { state, hub } = this.deps;
    const now = Date.now();
    const givenUp = now - first.createdAt >= this.deps.giveUpMs;
    if (givenUp && state.loaded && state.loaded.status !== 'error') {
      state.show({ status: 'error', last_error: DB_GAVE_UP });
      hub.publish([{ type: 'error', chat_id: this.deps.chatId(), error: DB_GAVE_UP }, state.statusEvent()]);
    }
    const delay = givenUp ? RETRY_AFTER_GIVE_UP_MS : Math.min(RETRY_MAX_MS, RETRY_FIRST_MS * 2 ** first.attempts);
    this.deps.clock.by(now + delay);
  }
}
