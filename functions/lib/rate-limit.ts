/**
 * Per-IP rate limits: login attempts, and failed authentications (each costs a key lookup, and random key ids
 * would otherwise each cost a Postgres read). Counting happens in the client address's RateLimiter object. Only
 * logins and failures ask it, never a request that authenticates: an isolate remembers the addresses the object
 * told it to block, and refuses them before any lookup until their wait is over.
 */
import { settings } from '../core/settings';
import { tooManyRequests } from '../core/errors';

/** What is counted per client IP. */
export type RateBucket = 'login' | 'auth_failure' | 'shared_link';

/** Share link reads per client address per minute (`GET /shared/{token}` is public). */
export const SHARED_LINK_RATE_LIMIT = 120;

const WINDOW_MS = 60_000;
const MAX_REMEMBERED = 10_000;

const MESSAGES: Record<RateBucket, string> = {
  login: 'Too many login attempts from your address: try again later.',
  auth_failure: 'Too many failed authentications from your address: try again later.',
  shared_link: 'Too many shared chat reads from your address: try again later.',
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
  const limit = bucket === 'login' ? s.LOGIN_RATE_LIMIT : bucket === 'shared_link' ? SHARED_LINK_RATE_LIMIT : s.AUTH_FAILURE_RATE_LIMIT;
  const answer = await env.RATE_LIMITER.getByName(client).hit(bucket, limit, WINDOW_MS);
  if (answer.ok) return;
  if (bucket === 'auth_failure') {
    if (blocked.size >= MAX_REMEMBERED) blocked.clear(); // a bound, not a cache: the object still counts
    blocked.set(client, Date.now() + answer.retryAfterMs);
  }
  throw tooManyRequests(MESSAGES[bucket], answer.retryAfterMs);
}

/**
 * The object's name for a client address: IPv4 as is, IPv6 by its first four groups (one subscriber usually
 * holds a whole /64, so counting single addresses would be no limit at all). Null for something that is not an
 * address.
 */
export function rateLimiterName(ip: string): string | null {
  const v4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(ip);
  if (v4) return v4.slice(1).every((o) => Number(o) <= 255) ? `ip-${ip}` : null;
  if (!/^[0-9a-fA-F:.]+$/.test(ip) || !ip.includes(':') || ip.length > 45) return null;
  const halves = ip.split('::');
  if (halves.length > 2) return null;
  // An IPv4 tail (::ffff:1.2.3.4) stands for two groups; it only matters for the count.
  const split = (h: string | undefined) => (h ? h.split(':').flatMap((g) => (g.includes('.') ? ['0', '0'] : [g])) : []);
  const left = split(halves[0]);
  const right = split(halves[1]);
  const missing = 8 - left.length - right.length;
  if (halves.length === 1 ? missing !== 0 : missing < 1) return null;
  const groups = [...left, ...Array<string>(missing).fill('0'), ...right];
  const prefix = groups.slice(0, 4).map((g) => (/^[0-9a-fA-F]{1,4}$/.test(g) ? g.toLowerCase().replace(/^0+(?=.)/, '') : null));
  return prefix.length === 4 && prefix.every((g) => g !== null) ? `ip-${prefix.join(':')}::/64` : null;
}
