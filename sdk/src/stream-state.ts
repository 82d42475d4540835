/**
 * What a stream client knows of its chat, and the resume rules that keep it exact across reconnects. No sockets:
 * the stream feeds it frames (`apply`), and it answers which events listeners get.
 *
 * The server's side of the contract (docs/API.md, "The stream"): on every connect with `after_id=N` it sends, in one
 * frame, every durable message with id > N, the status, the queue, then the running turn's parts from seq 0; then
 * live events. So:
 * - durable messages: one with an id this client already passed is dropped (never repeated);
 * - the turn in progress: the connect frame's parts replace `partial`. When they continue what the client held (the
 *   same parts at the same seqs), listeners get only the parts it had not seen; when they do not (another turn, or
 *   the held one ended unseen), listeners get them all from seq 0, which means "start over";
 * - a live part with seq 0 starts a new partial; one whose seq skips ahead is a gap: the socket is replaced, and the
 *   next connect frame replays the turn;
 * - a turn that ended while the socket was down is not replayed: its durable message comes instead, and listeners get
 *   the parts they missed, from it, just before it: the rest of the turn the client was following, or the whole of a
 *   turn it never saw (from seq 0: one that started and ended while the socket was down, however many there were).
 *   So the parts of every turn after the first frame add up to its message's text. The first frame's messages are
 *   history from before the client came: they come as messages only.
 */
import type { ChatStatus, LastError, Message, Part, QueuedMessage, StreamEvent } from './types.js';

/**
 * The turn in progress, from its deltas: `parts[i]` is the delta with seq i. In a turn with tools this is the step in
 * progress: its text and reasoning deltas, its `tool_call` parts and the `tool_result` parts known so far (whose
 * events carry role `tool`); the step's durable messages end it, and the next step starts again from seq 0.
 */
export interface PartialTurn {
  readonly role: 'assistant';
  readonly parts: readonly Part[];
  /** The text deltas, joined: what the assistant message's text will be when the turn ends. */
  readonly text: string;
  /** The reasoning deltas, joined. */
  readonly reasoning: string;
}

export interface StreamStatus {
  status: ChatStatus;
  last_error?: LastError;
}

type PartEvent = Extract<StreamEvent, { type: 'message_part' }>;

/** Counters of what the resume rules did (for tests and diagnostics). */
export interface ResumeCounts {
  /** Durable messages received again and dropped. */
  duplicateMessages: number;
  /** Parts received again and dropped (a connect frame's replay of parts the client held, or a live repeat). */
  duplicateParts: number;
  /** Replays that did not continue the held partial: listeners were sent the turn again from seq 0. */
  restarts: number;
  /** Live parts that skipped ahead. */
  gaps: number;
  fullRefreshes: number;
  /** Turns whose last parts were missed (the turn ended while the socket was down): filled in from the message. */
  completions: number;
}

const samePart = (a: Part, b: Part): boolean => a.type === b.type && JSON.stringify(a) === JSON.stringify(b);

export class StreamState {
  messages: Message[] = [];
  status: StreamStatus | null = null;
  queue: QueuedMessage[] = [];
  /** The newest durable message id this client has: the next connect asks for what follows it. */
  lastId: number;
  readonly counts: ResumeCounts = { duplicateMessages: 0, duplicateParts: 0, restarts: 0, gaps: 0, fullRefreshes: 0, completions: 0 };
  private turn: { parts: Part[]; text: string; reasoning: string } | null = null;
  /** False until the first frame is applied: its messages are history, not turns this client missed. */
  private followed = false;

  constructor(afterId: number) {
    this.lastId = afterId;
  }

  get partial(): PartialTurn | null {
    return this.turn && { role: 'assistant', parts: this.turn.parts, text: this.turn.text, reasoning: this.turn.reasoning };
  }

  /**
   * Applies one frame, event by event, handing each event listeners should get to `emit` once the state includes it.
   * `connect` marks the first frame of a connection (which replays the running turn). Returns whether a live part
   * skipped ahead (a gap): the socket must then be replaced, and the next connect replays the turn.
   */
  apply(events: readonly StreamEvent[], connect: boolean, emit: (event: StreamEvent) => void): { gap: boolean } {
    let held: readonly Part[] = connect ? [...(this.turn?.parts ?? [])] : [];
    const replay: PartEvent[] = [];
    let gap = false;
    const endTurn = () => {
      this.turn = null;
      held = [];
    };
    for (const e of events) {
      switch (e.type) {
        case 'message':
          if (e.message.id <= this.lastId) {
            this.counts.duplicateMessages += 1;
            continue;
          }
          this.messages.push(e.message);
          this.lastId = e.message.id;
          // A turn's parts are followed by its durable message.
          if (e.message.role === 'assistant') {
            this.complete(e, emit);
            endTurn();
          }
          break;
        case 'message_part':
          if (connect) replay.push(e);
          else if (!gap && !this.live(e, emit)) gap = true;
          continue;
        case 'status':
          this.status = e.status;
          if (e.status.status === 'waiting' || e.status.status === 'error') endTurn();
          break;
        case 'queue_update':
          this.queue = e.queued_messages;
          break;
        case 'full_refresh':
          this.messages = [...e.messages];
          this.lastId = e.messages.at(-1)?.id ?? this.lastId;
          this.counts.fullRefreshes += 1;
          endTurn();
          break;
        case 'error':
        case 'context_dirty':
        case 'title':
          break;
      }
      emit(e);
    }
    if (connect && !this.reconcile(held, replay, emit)) gap = true;
    if (gap) this.counts.gaps += 1;
    this.followed = true;
    return { gap };
  }

  /** A live part: true when it was taken (or was a repeat), false when it skipped ahead. */
  private live(e: PartEvent, emit: (event: StreamEvent) => void): boolean {
    const { seq, part } = e.message_part;
    const n = this.turn?.parts.length ?? 0;
    if (seq === 0) {
      if (n > 0) this.counts.restarts += 1;
      this.turn = null;
    } else if (seq < n) {
      this.counts.duplicateParts += 1;
      return true;
    } else if (seq > n) {
      return false;
    }
    this.append(part);
    emit(e);
    return true;
  }

  /** The connect frame's replay of the running turn, against what the client held before the connect. */
  private reconcile(held: readonly Part[], replay: readonly PartEvent[], emit: (event: StreamEvent) => void): boolean {
    if (replay.some((e, i) => e.message_part.seq !== i)) return false;
    this.turn = null;
    for (const e of replay) this.append(e.message_part.part);
    const continues = held.every((p, i) => {
      const r = replay[i];
      return r !== undefined && samePart(p, r.message_part.part);
    });
    if (continues) this.counts.duplicateParts += held.length;
    else this.counts.restarts += 1;
    for (const e of continues ? replay.slice(held.length) : replay) emit(e);
    return true;
  }

  /**
   * An assistant message after the first frame, when the parts listeners got do not add up to it (the turn ended while
   * the socket was down, and a connect replays only a running turn): listeners get the rest as parts first, so the
   * parts of a turn always add up to its message. The parts held for another turn (or none, for a turn that started
   * and ended while the socket was down) are dropped and the message's parts come from seq 0.
   */
  private complete(e: Extract<StreamEvent, { type: 'message' }>, emit: (event: StreamEvent) => void): void {
    const following = this.followed || this.turn !== null || this.status?.status === 'running' || this.status?.status === 'interrupting';
    if (!following) return;
    const final = { text: '', reasoning: '' };
    for (const p of e.message.content) {
      if (p.type === 'text' && 'text' in p && typeof p.text === 'string') final.text += p.text;
      if (p.type === 'reasoning' && 'text' in p && typeof p.text === 'string') final.reasoning += p.text;
    }
    const have = { text: this.turn?.text ?? '', reasoning: this.turn?.reasoning ?? '' };
    if (!final.text.startsWith(have.text) || !final.reasoning.startsWith(have.reasoning)) {
      this.counts.restarts += 1;
      this.turn = null;
      have.text = '';
      have.reasoning = '';
    }
    const rest: Part[] = [];
    if (final.reasoning.length > have.reasoning.length) rest.push({ type: 'reasoning', text: final.reasoning.slice(have.reasoning.length) });
    if (final.text.length > have.text.length) rest.push({ type: 'text', text: final.text.slice(have.text.length) });
    if (rest.length === 0) return;
    this.counts.completions += 1;
    for (const part of rest) {
      const seq = this.turn?.parts.length ?? 0;
      this.append(part);
      emit({ type: 'message_part', chat_id: e.chat_id, message_part: { role: 'assistant', part, seq } });
    }
  }

  private append(part: Part): void {
    this.turn ??= { parts: [], text: '', reasoning: '' };
    this.turn.parts.push(part);
    if (part.type === 'text') this.turn.text += part.text;
    else if (part.type === 'reasoning') this.turn.reasoning += part.text;
  }
}
