import { DurableObject } from 'cloudflare:workers';
import { SlidingWindow, type WindowAnswer } from './lib/sliding-window';


/**
 * One object per client IP (`ip-<address>`, an IPv6 address by its /64), counting logins and failed
 * authentications in sliding windows held in memory. Losing them when the object is evicted only forgives an
 * idle client. Why an object and not Workers' rate-limiting binding: docs/decisions.md.
 */
export class RateLimiter extends DurableObject<Env> {
  private readonly windows = new Map<string, SlidingWindow>();

  /** Counts one event in `bucket`, allowed while fewer than `limit` happened in the last `windowMs`. */
  hit(bucket: string, limit: number, windowMs: number): WindowAnswer {
    let w = this.windows.get(bucket);
    if (!w || w.limit !== limit || w.windowMs !== windowMs) {
      w = new SlidingWindow(limit, windowMs);
      this.windows.set(bucket, w);
    }
    return w.hit();
  }
}
