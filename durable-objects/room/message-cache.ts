import type { MessagePageQuery } from '../../functions/core/room-api';
import type { Message } from '../../functions/core/chats';

/**
 * The newest durable messages of one chat, in id order, bounded.
 *
 * `coveredFrom` is the id after which the cache is known to hold every live message of the chat: a catch-up
 * for `after_id >= coveredFrom` is served from memory, anything older needs Postgres. Because the chat's
 * Durable Object is the only writer of its history, every insert passes through `append` and the cache never
 * has gaps. Message ids are global to the deployment, so ids of other chats may sit between two of ours.
 */
export class MessageCache {
  private msgs: Message[] = [];
  private covered: number | null = null;
  /** True when the cache holds the chat's whole live history. */
  private whole = false;
  /** The estimated bytes the cached messages take (see `sizeOf`). */
  private held = 0;
  private readonly sizes = new WeakMap<Message, number>();

  /**
   * @param capacity  at most this many messages
   * @param maxBytes  and at most about this many bytes of them: a chat of maximum-size messages holds fewer (its
   *   older catch-ups and the model's history are then read from Postgres), so one chat cannot fill an isolate
   */
  constructor(
    readonly capacity = 256,
    readonly maxBytes = 6 * 1024 * 1024,
  ) {}

  get size(): number {
    return this.msgs.length;
  }

  /** The estimated bytes held. */
  get bytes(): number {
    return this.held;
  }

  /** A message's estimated size in memory: its content as JSON, two bytes a character, plus its fields. */
  private sizeOf(m: Message): number {
    let n = this.sizes.get(m);
    if (n === undefined) {
      n = 2 * JSON.stringify(m.content).length + 256;
      this.sizes.set(m, n);
    }
    return n;
  }

  private recount(): void {
    this.held = this.msgs.reduce((t, m) => t + this.sizeOf(m), 0);
  }

  get coveredFrom(): number | null {
    return this.covered;
  }

  /** The whole live history, when the cache holds all of it. */
  history(): Message[] | null {
    return this.whole ? [...this.msgs] : null;
  }

  newestId(): number | null {
    return this.msgs.at(-1)?.id ?? null;
  }

  /** New messages written by this object. `fromStart` when they open the chat (nothing came before). */
  append(ms: readonly Message[], fromStart = false): void {
    const first = ms[0];
    if (!first) return;
    if (this.covered === null) {
      this.covered = first.id - 1;
      this.whole = fromStart;
    }
    this.msgs.push(...ms);
    for (const m of ms) this.held += this.sizeOf(m);
    this.trim();
  }

  /** Messages with id > afterId, or null when the cache cannot tell (a Postgres read is needed). */
  after(afterId: number): Message[] | null {
    if (this.covered === null) return null;
    if (afterId < this.covered && !this.whole) return null;
    return this.msgs.filter((m) => m.id > afterId);
  }

  /**
   * One page of `GET /messages` (ascending; with only `before_id`, the newest page before it), or null when the
   * cache cannot answer it exactly.
   */
  page(q: MessagePageQuery): Message[] | null {
    if (this.covered === null) return null;
    const before = q.before_id ?? Number.MAX_SAFE_INTEGER;
    if (q.before_id !== undefined && q.after_id === undefined) {
      const below = this.msgs.filter((m) => m.id < before);
      // The cache holds every live message above `covered`: the newest `limit` below `before` are all here.
      if (below.length >= q.limit) return below.slice(-q.limit);
      return this.whole ? below : null;
    }
    const after = q.after_id ?? 0;
    if (after < this.covered && !this.whole) return null;
    return this.msgs.filter((m) => m.id > after && m.id < before).slice(0, q.limit);
  }

  /** Every live message after `afterId`, as just read from Postgres. */
  fill(afterId: number, ms: readonly Message[]): void {
    const known = new Map(this.msgs.map((m) => [m.id, m]));
    for (const m of ms) known.set(m.id, m);
    const lo = this.covered === null ? afterId : Math.min(afterId, this.covered);
    this.msgs = [...known.values()].filter((m) => m.id > lo).sort((a, b) => a.id - b.id);
    this.recount();
    this.covered = lo;
    this.whole = this.whole || afterId === 0;
    this.trim();
  }

  /** Replaces everything with the full live history (after an edit). */
  replace(all: readonly Message[]): void {
    this.msgs = [...all];
    this.recount();
    this.covered = 0;
    this.whole = true;
    this.trim();
  }

  clear(): void {
    this.msgs = [];
    this.held = 0;
    this.covered = null;
    this.whole = false;
  }

  private trim(): void {
    let drop = 0;
    let bytes = this.held;
    // The oldest go past the count, and past the byte budget (the newest always stays: the stream needs it next).
    const over = () => this.msgs.length - drop > this.capacity || (bytes > this.maxBytes && this.msgs.length - drop > 1);
    for (let m = this.msgs[drop]; m && over(); m = this.msgs[drop]) {
      bytes -= this.sizeOf(m);
      drop += 1;
    }
    if (drop <= 0) return;
    this.held = bytes;
    const dropped = this.msgs.splice(0, drop);
    const lastDropped = dropped.at(-1);
    if (lastDropped) this.covered = Math.max(this.covered ?? 0, lastDropped.id);
    this.whole = false;
  }
}
