/**
 * A per-user cache of Web Push subscriptions: entries live for a TTL, concurrent misses share one fetch
 * (single flight), and `invalidate` bumps the user's generation so a fetch that started before a subscribe or
 * unsubscribe can never store its (stale) result. The reference system found the push path re-reading
 * subscriptions on every dispatch; this removes those reads without letting a change be overwritten.
 */
export interface CacheStats {
  hits: number;
  fetches: number;
  staleDiscarded: number;
}

export class SubscriptionCache<T> {
  private readonly entries = new Map<string, { value: T[]; at: number; generation: number }>();
  private readonly generations = new Map<string, number>();
  private readonly inflight = new Map<string, { generation: number; promise: Promise<T[]> }>();
  readonly stats: CacheStats = { hits: 0, fetches: 0, staleDiscarded: 0 };

  constructor(
    private readonly fetcher: (userId: string) => Promise<T[]>,
    private readonly ttlMs = 180_000,
    private readonly now: () => number = Date.now,
  ) {}

  private generation(userId: string): number {
    return this.generations.get(userId) ?? 0;
  }

  async get(userId: string): Promise<T[]> {
    const gen = this.generation(userId);
    const hit = this.entries.get(userId);
    if (hit && hit.generation === gen && this.now() - hit.at < this.ttlMs) {
      this.stats.hits += 1;
      return hit.value;
    }
    const flight = this.inflight.get(userId);
    if (flight && flight.generation === gen) return await flight.promise;
    this.stats.fetches += 1;
    const promise = this.fetcher(userId).then((value) => {
      if (this.generation(userId) === gen) this.entries.set(userId, { value, at: this.now(), generation: gen });
      else this.stats.staleDiscarded += 1;
      return value;
    });
    const entry = { generation: gen, promise };
    this.inflight.set(userId, entry);
    try {
      return await promise;
    } finally {
      if (this.inflight.get(userId) === entry) this.inflight.delete(userId);
    }
  }

  /** The user's subscriptions changed: forget them, and make any fetch already under way unable to store. */
  invalidate(userId: string): void {
    this.generations.set(userId, this.generation(userId) + 1);
    this.entries.delete(userId);
    this.inflight.delete(userId);
  }
}
