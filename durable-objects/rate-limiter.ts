import { DurableObject } from 'cloudflare:workers';
import { SlidingWindow, type WindowAnswer } from '../functions/lib/sliding-window';

/** What is counted per client IP. */
export type RateBucket = 'login' | 'auth_failure';

/**
 * One object per client IP (`ip-<address>`, an IPv6 address by its /64), counting logins and failed
 * authentications in sliding windows held in memory. Losing them when the object is evicted only forgives an
 * idle client. Why an object and not Workers' rate-limiting binding: docs/decisions.md.
 */
export class RateLimiter extends DurableObject<Env> {
  private readonly windows = new Map<RateBucket, SlidingWindow>();

  /** Counts one event in `bucket`, allowed while fewer than `limit` happened in the last `windowMs`. */
  hit(bucket: RateBucket, limit: number, windowMs: number): WindowAnswer {
    let w = this.windows.get(bucket);
    if (!w || w.limit !== limit || w.windowMs !== windowMs) {
      w = new SlidingWindow(limit, windowMs);
      this.windows.set(bucket, w);
    }
    return w.hit();
  }
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
