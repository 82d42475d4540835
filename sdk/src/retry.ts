/** Jittered exponential backoff, and the fetch that retries requests made safe by an `Idempotency-Key`. */

export interface BackoffOptions {
  /** The first delay's upper bound (default 250 ms); each retry doubles it. */
  baseMs?: number;
  /** The largest delay (default 10 s). */
  maxMs?: number;
  /** The jitter's source, in [0, 1) (default Math.random; tests pass a seeded one). */
  random?: () => number;
}

export interface RetryOptions extends BackoffOptions {
  /** Tries of a keyed request in all (default 4). */
  attempts?: number;
}

/** "Full jitter": a random delay up to min(maxMs, baseMs × 2^attempt), so clients that failed together spread out. */
export function backoffMs(attempt: number, o: BackoffOptions = {}): number {
  const cap = Math.min(o.maxMs ?? 10_000, (o.baseMs ?? 250) * 2 ** Math.min(attempt, 30));
  return Math.floor((o.random ?? Math.random)() * cap);
}

/** Resolves after `ms`, or at once when `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) {
      resolve();
      return;
    }
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done);
  });
}

export type Fetch = (request: Request) => Promise<Response>;

/**
 * A fetch that retries requests carrying an `Idempotency-Key` when no answer came (a network error, or an answer
 * lost on the way back) or the answer was 503, with jittered backoff. The server answers a repeat of a key with the
 * first response, so a retry never creates a second chat or message. Requests without a key go through once.
 */
export function retryingFetch(fetch: Fetch, o: RetryOptions = {}): Fetch {
  const attempts = Math.max(1, o.attempts ?? 4);
  return async (request) => {
    if (!request.headers.has('idempotency-key')) return await fetch(request);
    for (let attempt = 0; ; attempt++) {
      const last = attempt + 1 >= attempts;
      try {
        // Each try sends a copy: the body of a request can be read once.
        const res = await fetch(last ? request : request.clone());
        if (res.status !== 503 || last) return res;
        await res.body?.cancel();
      } catch (e) {
        if (last || request.signal.aborted) throw e;
      }
      await sleep(backoffMs(attempt, o), request.signal);
    }
  };
}
