/**
 * The lifecycle of a chat's turns, inside the room's lock: start one (at most one at a time), run its calls one after
 * the other, stop it, and write each step and its end through the one write path (`ChatWriter`, or the outbox when
 * Postgres cannot take it); then run the next queued message. The alarm beats while a turn runs.
 *
 * A turn with tools is a loop of calls: each model call (with the tools it asked for) or run of approved tool calls
 * ends with one durable write, and only then does the next call start. While calls wait for approval nothing runs:
 * the chat is `requires_action` in Postgres, and the loop goes on from the history when they are decided, in this
 * object or in the next one (after an eviction).
 */
import { isTransient } from '../../functions/core/db';
import { DbUnavailableError } from '../../functions/core/errors';
import { log } from '../../functions/core/log';
import type { ResolvedModel } from '../../functions/core/model-resolve';
import { ok, type RoomResult, type StreamEvent, type TurnOutcome } from '../../functions/core/room-api';
import type { Chat, Message, Part, PendingToolCall } from '../../functions/core/chats';
import type { AlarmClock } from './alarm-clock';
import type { Budget } from './budget';
import { INTERRUPTED, type ChatState } from './chat-state';
import type { ChatStore } from './chat-store';
import type { Written } from './written';
import type { ChatWriter } from './chat-writer';
import type { Mutex } from './mutex';
import type { OutboxWriter, WriteListener } from './outbox-writer';
import type { QueueRunner } from './queue-runner';
import type { StreamHub } from './stream-hub';
import { finishEntryOf, pendingOf, stepEntryOf, stoppedWaitEntry, type CallOutcome, type FinishEntry, type Turn } from './turn';
import type { TurnRunner, TurnSink } from './turn-runner';
import { notifyTurnEnd } from './turn-notify';

const HEARTBEAT_MS = 15_000;
/** A turn whose ending was written but whose next queued message failed to start: the alarm tries again this soon. */
const QUEUE_RETRY_MS = 250;

/** Resolves on a later task of the event loop (after the replies of the current one have left). */
const nextTask = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 0));

export interface TurnsDeps {
  chatId: () => string;
  env: Env;
  ctx: DurableObjectState;
  lock: Mutex;
  state: ChatState;
  store: ChatStore;
  hub: StreamHub;
  writer: ChatWriter;
  outbox: OutboxWriter;
  queue: QueueRunner;
  runner: TurnRunner;
  clock: AlarmClock;
  budget: Budget;
}

export class Turns implements TurnSink, WriteListener {
  /** The running turn; set and cleared only under the lock. */
  current: Turn | null = null;
  lastOutcome: TurnOutcome | null = null;
  /** An interrupt came while a tool step waited in the outbox: once written, the turn ends instead of going on. */
  stopAfterDrain = false;
  /** Set by the room: everything goes (the chat was deleted under a write). */
  onGone: () => Promise<void> = () => Promise.resolve();
  /** Set by the room: a turn's answer is written and published (the title job looks at it: room/titles.ts). */
  onAnswer: (finalText: string, modelConfigId: string | null) => void = () => undefined;

  constructor(private readonly deps: TurnsDeps) {}

  /**
   * With the chat already `running` in Postgres: starts the turn in the background, with a model call, or with the
   * run of a tool call the chat owner approved (`approved`: a turn going on after approvals).
   */
  start(resolved: ResolvedModel, approved: PendingToolCall | null = null, wantedAt = Date.now()): void {
    if (this.current) throw new Error('a turn is already running');
    const idle = Promise.resolve({ result: null, failure: null });
    const chat = this.deps.state.loaded;
    const turn: Turn = {
      id: crypto.randomUUID(),
      resolved,
      abort: new AbortController(),
      parts: [],
      call: idle,
      approved: [],
      history: null,
      hasAgent: (chat?.agent_id ?? null) !== null,
      ownerId: chat?.owner_id ?? '',
      wantedAt,
    };
    this.current = turn;
    // The call starts on the next task, once the request that started the turn has its answer: the call's first
    // synchronous part (history, prompt, tools, the model request's body) runs up to the model's fetch, and all of it
    // would run before the RPC's reply leaves. The turn is current from here on, so a stop meanwhile aborts it.
    // The loop awaits the call (calls never reject: failures are outcomes).
    const call = nextTask().then(() => (approved ? this.deps.runner.runApproved(turn, approved, this) : this.deps.runner.run(turn, this)));
    void this.begin(turn, call);
    this.deps.ctx.waitUntil(this.loop(turn));
  }

  /**
   * The turn's calls, one at a time: each call's outcome is written under the lock, which starts the next one there
   * (so a request that stops the turn always finds the call that runs), or ends the turn.
   */
  private async loop(turn: Turn): Promise<void> {
    let call: Promise<CallOutcome> | null = turn.call;
    try {
      while (call) {
        const settled: Promise<CallOutcome> = call;
        const outcome = await settled;
        // Wrapped: a promise returned bare from the locked section would be awaited inside it.
        const next: { call: Promise<CallOutcome> } | null = await this.deps.lock.run(() => this.advance(turn, settled, outcome));
        call = next?.call ?? null;
      }
    } catch (e) {
      // After the ending was written (running the next queued message failed): the alarm tries the queue again.
      if (!isTransient(e)) log('error', 'turn completion failed', { chat_id: this.deps.chatId(), error: String(e) });
      this.deps.state.reset({ keepRow: true });
      this.deps.clock.by(Date.now() + QUEUE_RETRY_MS);
    }
  }

  /** A call of the turn starts: a request that stops the turn waits for it; its parts start from seq 0. */
  private begin(turn: Turn, call: Promise<CallOutcome>): Promise<CallOutcome> {
    turn.call = call;
    turn.parts = [];
    this.deps.clock.by(Date.now() + HEARTBEAT_MS);
    return call;
  }

  /** Whether the chat is busy: a call runs, or tool calls wait for approval (new messages queue meanwhile). */
  busy(chat: Chat): boolean {
    return this.current !== null || chat.status === 'requires_action';
  }

  // ------------------------------------------------------------------ TurnSink: what the runner hands over

  /** A part of the step in progress (a delta, a tool call, a tool result): kept for sockets that connect later, sent. */
  emit(turn: Turn, role: 'assistant' | 'tool', part: Part): void {
    if (this.current !== turn) return;
    const seq = turn.parts.length;
    turn.parts.push({ part, seq, role });
    this.deps.hub.part({ type: 'message_part', chat_id: this.deps.chatId(), message_part: { role, part, seq } });
  }

  /** The turn's history: read once (from the cache when it holds all of it), then kept current by its writes. */
  async history(turn: Turn): Promise<Message[]> {
    turn.history ??= await this.deps.state.history();
    return turn.history;
  }

  // ------------------------------------------------------------------ a call is over

  /**
   * A call of the turn is over: a tool step is written and the next call starts (returned), or nothing runs while
   * calls wait for approval; any other outcome (an answer in text, a failure, an interrupt, the step limit) ends it.
   */
  private async advance(turn: Turn, call: Promise<CallOutcome>, outcome: CallOutcome): Promise<{ call: Promise<CallOutcome> } | null> {
    if (this.current !== turn || turn.call !== call) return null;
    const entry = stepEntryOf(turn, outcome, pendingOf(await this.chat()));
    if (!entry) {
      await this.complete(turn, outcome, { runQueue: true });
      return null;
    }
    const w = await this.deps.outbox.write(entry, this);
    if (w) await this.published(entry, w);
    else if (this.deps.outbox.size > 0) {
      // Kept in the outbox: nothing runs until Postgres has it; then the loop goes on from the history (`written`).
      if (this.current === turn) this.current = null;
      return null;
    }
    if (this.current !== turn) return null;
    // The next call is wanted from now (its queue_ms: the prompt, the tools, any wait before its request).
    turn.wantedAt = Date.now();
    const next = turn.approved.shift();
    if (next) return { call: this.begin(turn, this.deps.runner.runApproved(turn, next, this)) };
    if (entry.status === 'running') return { call: this.begin(turn, this.deps.runner.run(turn, this)) };
    this.current = null;
    return null;
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
  private async complete(turn: Turn, outcome: CallOutcome, opts: { runQueue: boolean }): Promise<void> {
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

  // ------------------------------------------------------------------ writes

  /** A write a request makes (a denial): in Postgres now, or the request fails (503) and nothing is stored. */
  async writeNow(entry: FinishEntry): Promise<void> {
    if (this.deps.outbox.size > 0) throw new DbUnavailableError('writes are waiting for the database');
    await this.written(entry, await this.deps.store.finish(entry), true);
  }

  /** A turn's write: in Postgres now and published, or kept in the outbox until Postgres takes it. */
  private async write(entry: FinishEntry, runQueue: boolean): Promise<void> {
    const w = await this.deps.outbox.write(entry, this);
    if (w) await this.written(entry, w, runQueue);
  }

  /**
   * A turn's write is in Postgres: published. A tool step's turn goes on (here, when it still runs; else from the
   * history, as a new turn); an ending notifies the owner and runs the next queued message (with `runQueue`).
   */
  async written(entry: FinishEntry, w: Written, runQueue: boolean): Promise<void> {
    if (entry.status === 'running' || entry.status === 'requires_action') {
      await this.published(entry, w);
      if (this.current?.id !== entry.turnId) await this.proceed(entry);
      return;
    }
    const chat = await this.chat();
    if (!chat) return;
    const errors: StreamEvent[] = entry.lastError ? [{ type: 'error', chat_id: this.deps.chatId(), error: entry.lastError }] : [];
    const { events } = await this.deps.writer.commit(() => Promise.resolve(w), this.change(entry), { after: errors, status: false, hold: true });
    this.heard(entry, w);
    // After a failure the queue pauses; otherwise its next message runs at once, and `waiting` is not published.
    const next = entry.status === 'waiting' && runQueue ? await this.runNextQueued(events) : null;
    await this.deps.budget.flush(chat.owner_id);
    if (!(next?.ok && next.value)) {
      this.deps.hub.publish([...events, this.deps.state.statusEvent()]);
      this.notifyOwner(entry);
    }
    // Last, once the end is published and the next queued message started: the title job (no statement here).
    if (entry.status === 'waiting' && entry.content.length > 0 && entry.finalText.trim() !== '') this.onAnswer(entry.finalText, entry.modelConfigId);
  }

  /** A tool step's write, published (with the status when it changed) and added to the running turn's history. */
  private async published(entry: FinishEntry, w: Written): Promise<void> {
    const changed = (await this.chat())?.status !== entry.status;
    await this.deps.writer.commit(() => Promise.resolve(w), this.change(entry), { status: changed });
    this.heard(entry, w);
  }

  private change(entry: FinishEntry) {
    return { status: entry.status, last_error: entry.lastError, pending_tool_calls: entry.pending };
  }

  /** What a write means beyond the stream: the running turn sees its messages, the spend meter their cost. */
  private heard(entry: FinishEntry, w: Written): void {
    this.current?.history?.push(...w.messages);
    // Reported with the next queued message's spend check, else before the end is published.
    this.deps.budget.spent(w.messages, entry.cost !== null && entry.content.length > 0);
  }

  /**
   * A tool step written from the outbox (its turn is over here) goes on from the history, as a new turn; or it ends
   * there, when an interrupt came while it waited.
   */
  private async proceed(entry: FinishEntry): Promise<void> {
    if (this.current) return;
    if (this.stopAfterDrain) {
      this.stopAfterDrain = false;
      if (entry.status === 'requires_action') await this.endWaiting(true);
      else await this.write({ ...entry, content: [], results: [], step: null, status: 'waiting', pending: [] }, true);
      return;
    }
    if (entry.status === 'running') await this.resume();
  }

  async chatGone(): Promise<void> {
    await this.onGone();
  }

  /** Applies the writes waiting in the outbox (throws while Postgres still cannot take them). */
  async drain(): Promise<void> {
    await this.deps.outbox.drain(this);
  }

  // ------------------------------------------------------------------ going on

  /**
   * Goes on with the chat's turn from its history: the next model call, or first the run of an approved call. The
   * model is the chat's last one (the default when it is no longer usable); none at all pauses the chat (`config`).
   */
  async resume(approved: PendingToolCall | null = null): Promise<RoomResult<null>> {
    const chat = await this.chat();
    if (!chat || this.current) return ok(null);
    const resolved = await this.deps.queue.resolveOrPause(chat.last_model_config_id);
    if (!resolved.ok) return resolved;
    this.start(resolved.value, approved);
    return ok(null);
  }

  /** With no turn running, the queue's next message runs (after `before`, a finished turn's events). */
  async runNextQueued(before: StreamEvent[] = []): Promise<RoomResult<Message | null>> {
    const next = await this.deps.queue.next(before);
    if (!next.ok) return next;
    if (!next.value) return ok(null);
    this.start(next.value.resolved, null, next.value.queuedAt);
    return ok(next.value.message);
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

  // ------------------------------------------------------------------ a new life of the object, and the alarm

  /**
   * The chat was just loaded by this object's life: writes left in the outbox are retried; a chat left running by a
   * runner that vanished (an eviction, a crash) is recovered, never left `running`.
   */
  async settle(chat: Chat): Promise<void> {
    const { state, store, hub } = this.deps;
    if (this.deps.outbox.size > 0) {
      this.deps.outbox.retryLater();
      return;
    }
    if ((chat.status === 'running' || chat.status === 'interrupting') && !this.current) {
      state.set((await store.setStatus('error', INTERRUPTED)) ?? chat);
      hub.publish([{ type: 'error', chat_id: this.deps.chatId(), error: INTERRUPTED }, state.statusEvent()]);
    }
  }

  /**
   * The alarm's work, under the lock: the outbox first, then a queued message that should be running and is not.
   * Postgres still refusing the outbox's writes ends it quietly: what the object holds (the cached messages, the
   * queue) stays good, since the write that failed never reached the cache (the retry adds it once it commits), so
   * sockets that connect meanwhile are still served from memory.
   */
  async onAlarm(): Promise<void> {
    if (this.deps.outbox.size > 0) {
      try {
        await this.drain();
      } catch (e) {
        if (isTransient(e)) return;
        throw e;
      }
    }
    const chat = await this.chat();
    if (chat && !this.current && chat.status === 'waiting' && this.deps.outbox.size === 0) await this.runNextQueued();
  }

  /** What the alarm does after its work: beat again while a turn runs, retry while the outbox holds writes. */
  afterAlarm(): void {
    if (this.deps.outbox.size > 0) this.deps.outbox.retryLater();
    else if (this.current) this.deps.clock.by(Date.now() + HEARTBEAT_MS);
  }
}
