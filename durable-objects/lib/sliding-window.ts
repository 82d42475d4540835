/**
 * A rate limit without window edges: at most `limit` events in any `windowMs`, kept as the times of the last
 * `limit` events. Unlike a fixed window it never lets 2×limit through around a boundary, and it knows exactly when
 * the next event is allowed (the honest `Retry-After`).
 */
export type WindowAnswer = { ok: true } | { ok: false; retryAfterMs: number };

export class SlidingWindow {
  private readonly times: number[] = [];

  constructor(
    readonly limit: number,
    readonly windowMs: number,
  ) {}

  /** Records an event at `now` when allowed; otherwise says how long until one is. */
  hit(now = Date.now()): WindowAnswer {
    while (this.times.length > 0 && now - (this.times[0] ?? now) >= this.windowMs) this.times.shift();
    if (this.times.length >= this.limit) return { ok: false, retryAfterMs: (this.times[0] ?? now) + this.windowMs - now };
    this.times.push(now);
    return { ok: true };
  }
}
