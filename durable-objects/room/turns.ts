/**
 * The lifecycle of a chat's turns, inside the room's lock: start one (at most one at a time), stream its parts,
 * stop it, write its steps and its ending (or keep them in the outbox when Postgres cannot take them, and retry until
 * it can), go on with its tool loop, and run the next queued message. The alarm that beats while a turn runs and
 * retries the outbox is scheduled here.
 *
 * A turn with tools is a loop of calls: each model call (with the tools it asked for) or run of approved tool calls
 * ends with one durable write, and only then does the next call start. While calls wait for approval nothing runs:
 * the chat is `requires_action` in Postgres, and the loop goes on from the history when they are decided, in this
 * object or in the next one (after an eviction).
 */
import { isTransient, pgErrorCode } from '../../functions/core/db';
import { DbUnavailableError } from '../../functions/core/errors';
import { ok, type RoomFailure, type RoomResult, type StreamEvent, type TurnOutcome } from '../../functions/core/room-api';
import type { ModelDelta } from '../llm/model';
import type { ResolvedModel } from '../../functions/core/model-resolve';
import type { Chat, LastError, Message, Part, PendingToolCall } from '../../functions/core/chats';
import { notifyTurnEnd } from './turn-notify';
import type { AlarmClock } from './alarm-clock';
import type { Budget } from './budget';
import type { ChatState } from './chat-state';
import type { ChatStore, Written } from './chat-store';
import type { Mutex } from './mutex';
import type { Outbox } from './outbox';
import type { StreamHub } from './stream-hub';
import { finishEntryOf, pendingOf, stepEntryOf, stoppedWaitEntry, type CallOutcome, type FinishEntry, type Turn } from './turn';
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
  /** An interrupt came while a tool step waited in the outbox: once written, the turn ends instead of going on. */
  stopAfterDrain = false;

  constructor(private readonly deps: TurnsDeps) {}

  /**
   * With the chat already `running` in Postgres: starts the turn's first call in the background, a model call, or the
   * run of a tool call the chat owner approved (`approved`: a turn going on after approvals).
   */
  start(resolved: ResolvedModel, approved: PendingToolCall | null = null): void {
    if (this.current) throw new Error('a turn is already running');
    const idle = Promise.resolve({ result: null, failure: null });
    const turn: Turn = { id: crypto.randomUUID(), resolved, abort: new AbortController(), parts: [], call: idle, approved: [] };
    this.current = turn;
    this.launch(turn, approved ? this.deps.runner().runApproved(turn, approved) : this.deps.runner().run(turn));
  }

  /** Starts a call of the turn in the background; once it is over, its outcome is written under the lock. */
  private launch(turn: Turn, call: Promise<CallOutcome>): void {
    turn.call = call;
    turn.parts = [];
    this.deps.clock.by(Date.now() + HEARTBEAT_MS);
    const done = call
      .then((outcome) => this.deps.lock.run(() => this.advance(turn, call, outcome)))
      .catch((e: unknown) => {
        // After the ending was written (running the next queued message failed): the alarm tries the queue again.
        if (!isTransient(e)) console.error(JSON.stringify({ level: 'error', msg: 'turn completion failed', chat_id: this.deps.chatId(), error: String(e) }));
        this.deps.state.reset({ keepRow: true });
        this.deps.clock.by(Date.now() + RETRY_FIRST_MS);
      });
    this.deps.ctx.waitUntil(done);
  }

  /** Whether the chat is busy: a call runs, or tool calls wait for approval (new messages queue meanwhile). */
  busy(chat: Chat): boolean {
    return this.current !== null || chat.status === 'requires_action';
  }

  /** A delta of the running turn, kept for sockets that connect later and sent to those connected. */
  part(turn: Turn, d: ModelDelta): void {
    this.emit(turn, 'assistant', { type: d.type, text: d.text });
  }

  /** A part of the step in progress (a delta, a tool call, a tool result). */
  emit(turn: Turn, role: 'assistant' | 'tool', part: Part): void {
    if (this.current !== turn) return;
    const seq = turn.parts.length;
    turn.parts.push({ part, seq, role });
    this.deps.hub.part({ type: 'message_part', chat_id: this.deps.chatId(), message_part: { role, part, seq } });
  }

  /**
   * A call of the turn is over: a tool step is written and the loop goes on (see `proceed`); any other outcome (an
   * answer in text, a failure, an interrupt, the step limit) ends the turn.
   */
  private async advance(turn: Turn, call: Promise<CallOutcome>, outcome: CallOutcome): Promise<void> {
    if (this.current !== turn || turn.call !== call) return;
    const entry = stepEntryOf(turn, outcome, pendingOf(await this.chat()));
    if (!entry) {
      await this.complete(turn, outcome, { runQueue: true });
      return;
    }
    await this.write(entry, true);
    // Kept in the outbox: nothing runs until Postgres has it; then the loop goes on from the history (`proceed`).
    if (this.current === turn && turn.call === call) this.current = null;
  }

  /**
   * Stops the running turn and waits for its call to end; then writes what it produced, or nothing with `discard`
   * (an edit, which drops every message after the edited one and sets the status itself).
   */
  async stop(opts: { runQueue: boolean; discard?: boolean }): Promise<void> {
    const turn = this.current;
    if (!turn) {
      if (opts.discard !== true) await this.endWaiting(opts.runQueue);
      return;
    }
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
    const undecided = pendingOf(await this.chat());
    this.current = null;
    if (this.deps.state.gone) return;
    const entry = finishEntryOf({ id: turn.id, modelConfigId: turn.resolved.config.id, pricing: turn.resolved.config.pricing, approved: turn.approved }, outcome, undecided);
    this.lastOutcome = { status: entry.status === 'error' ? 'error' : 'waiting', finalText: entry.finalText, error: entry.lastError, modelConfigId: turn.resolved.config.id };
    await this.write(entry, opts.runQueue);
  }

  /** With nothing running, a turn that waits for approvals ends: its calls are answered as stopped, the chat waits. */
  private async endWaiting(runQueue: boolean): Promise<void> {
    const entry = stoppedWaitEntry(await this.chat());
    if (entry) await this.write(entry, runQueue);
  }

  private async chat(): Promise<Chat | null> {
    return this.deps.state.loaded ?? (await this.deps.state.load());
  }

  /** A write a request makes (a denial): in Postgres now, or the request fails (503) and nothing is stored. */
  async writeNow(entry: FinishEntry): Promise<void> {
    if (this.deps.outbox().size > 0) throw new DbUnavailableError('writes are waiting for the database');
    await this.finished(entry, await this.deps.store.finish(entry), true);
  }

  /**
   * A turn's write, or its ending, in Postgres: published, then the loop goes on or the next queued message runs.
   * When Postgres cannot take it, it waits in the outbox (and is retried) behind the writes already there.
   */
  async write(entry: FinishEntry, runQueue: boolean): Promise<void> {
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
    await this.finished(entry, w, runQueue);
  }

  /** A turn's write is in Postgres: publish it, notify the owner, and run the next queued message. */
  private async finished(entry: FinishEntry, w: Written, runQueue: boolean): Promise<void> {
    const { state, hub } = this.deps;
    const chat = await this.chat();
    if (!chat) return;
    const changed = chat.status !== entry.status;
    state.patch({ status: entry.status, last_error: entry.lastError, pending_tool_calls: entry.pending, updated_at: w.chatUpdatedAt ?? chat.updated_at });
    state.cache.append(w.messages);
    // Reported with the next queued message's spend check, else before the end is published.
    this.deps.budget.spent(w.messages, entry.cost !== null && entry.content.length > 0);
    const events: StreamEvent[] = w.messages.map((m) => ({ type: 'message', chat_id: this.deps.chatId(), message: m }));
    if (entry.status === 'running' || entry.status === 'requires_action') {
      // A tool step: its parts are durable messages now, and the loop goes on (or waits for approval).
      hub.publish(changed ? [...events, state.statusEvent()] : events);
      await this.proceed(entry);
      return;
    }
    if (entry.lastError) events.push({ type: 'error', chat_id: this.deps.chatId(), error: entry.lastError });
    // After a failure the queue pauses; otherwise its next message runs at once, and `waiting` is not published.
    const next = entry.status === 'waiting' && runQueue ? await this.runNextQueued(events) : null;
    await this.deps.budget.flush(chat.owner_id);
    if (next?.ok && next.value) return;
    hub.publish([...events, state.statusEvent()]);
    this.notifyOwner(entry);
  }

  /**
   * After a tool step's write: the turn's next call starts (an approved call that waited, or the next model call), or
   * nothing runs while calls wait for approval. A step written from the outbox (its turn is over here) goes on from
   * the history, as a new turn.
   */
  private async proceed(entry: FinishEntry): Promise<void> {
    const turn = this.current;
    if (turn?.id === entry.turnId) {
      const next = turn.approved.shift();
      if (next) this.launch(turn, this.deps.runner().runApproved(turn, next));
      else if (entry.status === 'running') this.launch(turn, this.deps.runner().run(turn));
      else this.current = null;
      return;
    }
    if (turn) return;
    if (this.stopAfterDrain) {
      // Interrupted while this step waited for Postgres: the turn ends here.
      this.stopAfterDrain = false;
      if (entry.status === 'requires_action') await this.endWaiting(true);
      else await this.write({ ...entry, content: [], results: [], step: null, status: 'waiting', pending: [] }, true);
      return;
    }
    if (entry.status === 'running') await this.resume();
  }

  /**
   * Goes on with the chat's turn from its history: the next model call, or first the run of an approved call. The
   * model is the chat's last one (the default when it is no longer usable); none at all pauses the chat (`config`).
   */
  async resume(approved: PendingToolCall | null = null): Promise<RoomResult<null>> {
    const chat = await this.chat();
    if (!chat || this.current) return ok(null);
    const resolved = await this.resolveOrPause(chat.last_model_config_id);
    if (!resolved.ok) return resolved;
    this.start(resolved.value, approved);
    return ok(null);
  }

  /**
   * The model the next turn runs with; when none is usable the chat pauses (status `error`, kind `config`), published
   * after `events` (a finished turn's).
   */
  private async resolveOrPause(modelConfigId: string | null, events: StreamEvent[] = []): Promise<RoomResult<ResolvedModel>> {
    const resolved = await this.deps.store.resolve(modelConfigId, true);
    if (resolved.ok) return resolved;
    return await this.pause(resolved, { kind: 'config', message: resolved.message }, events);
  }

  /** Postgres could not take a turn's write: keep it in the outbox, show it, and retry with backoff. */
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
    // Paused, not lost: the message stays first in the queue.
    const resolved = await this.resolveOrPause(head.model_config_id ?? state.view().last_model_config_id, events);
    if (!resolved.ok) return resolved;
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
