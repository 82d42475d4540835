/**
 * Per-IP rate limits: login attempts, and failed authentications (each costs a key lookup, and random key ids
 * would otherwise each cost a Postgres read). Counting happens in the client address's RateLimiter object. Only
 * logins and failures ask it, never a request that authenticates: an isolate remembers the addresses the object
 * told it to block, and refuses them before any lookup until their wait is over.
 */
import { rateLimiterName, type RateBucket } from '../../durable-objects/rate-limiter';
import { settings } from '../env';
import { tooManyRequests } from './errors';

const WINDOW_MS = 60_000;
const MAX_REMEMBERED = 10_000;

const MESSAGES: Record<RateBucket, string> = {
  login: 'Too many login attempts from your address: try again later.',
  auth_failure: 'Too many failed authentications from your address: try again later.',
};

/** Addresses told to wait, per isolate: name → when the wait ends (ms). */
const blocked = new Map<string, number>();

/**
 * The RateLimiter name of the request's client (Cloudflare's `CF-Connecting-IP`, which clients cannot set), or
 * null without one: in production every request has it; tests and local tools that send none are not limited.
 */
export function clientOf(req: Request): string | null {
  const ip = req.headers.get('cf-connecting-ip');
  return ip ? rateLimiterName(ip.trim()) : null;
}

/** Throws 429 while this isolate knows the client must wait after too many failed authentications. */
export function refuseIfBlocked(client: string | null, now = Date.now()): void {
  if (client === null) return;
  const until = blocked.get(client);
  if (until === undefined) return;
  if (until <= now) {
    blocked.delete(client);
    return;
  }
  throw tooManyRequests(MESSAGES.auth_failure, until - now);
}

/** Counts one event for the client; throws 429 (with Retry-After) once over the limit. */
export async function countOrRefuse(env: Env, client: string | null, bucket: RateBucket): Promise<void> {
  if (client === null) return;
  const s = settings(env);
  const limit = bucket === 'login' ? s.LOGIN_RATE_LIMIT : s.AUTH_FAILURE_RATE_LIMIT;
  const answer = await env.RATE_LIMITER.getByName(client).hit(bucket, limit, WINDOW_MS);
  if (answer.ok) return;
  if (bucket === 'auth_failure') {
    if (blocked.size >= MAX_REMEMBERED) blocked.clear(); // a bound, not a cache: the object still counts
    blocked.set(client, Date.now() + answer.retryAfterMs);
  }
  throw tooManyRequests(MESSAGES[bucket], answer.retryAfterMs);
}
