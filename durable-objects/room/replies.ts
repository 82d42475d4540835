/** Answers to recent requests that carried an Idempotency-Key, by stored key: a replay to a warm object is free. */
export class Replies<T> {
  private readonly kept = new Map<string, T>();

  constructor(private readonly capacity = 256) {}

  get(key: string | null): T | undefined {
    return key === null ? undefined : this.kept.get(key);
  }

  /** Keeps an answer (the oldest goes past capacity) and returns it. */
  remember(key: string | null, value: T): T {
    if (key === null) return value;
    this.kept.delete(key);
    this.kept.set(key, value);
    if (this.kept.size > this.capacity) {
      const oldest = this.kept.keys().next();
      if (!oldest.done) this.kept.delete(oldest.value);
    }
    return value;
  }

  clear(): void {
    this.kept.clear();
  }
}
