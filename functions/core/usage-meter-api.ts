/**
 * What the chat objects and the Worker exchange with a user's spend meter (`UsageMeter`, one Durable Object per
 * user) over RPC: plain data, defined here so that no side imports the object.
 */
import type { SpendPeriod, SpendState } from './shapes/usage';

export { SpendLimit, SpendPeriod, SpendState } from './shapes/usage';

/** A priced answer just written: its UTC day and its cost in micro-units (a decimal integer string). */
export interface Spend {
  day: string;
  micros: string;
}

/** Whether a new turn may call its model now. */
export type SpendVerdict = { ok: true } | { ok: false; reason: 'limit'; resetsAt: string } | { ok: false; reason: 'unavailable' };

export interface UsageMeterRpc {
  /** Adds `spends` (answers not yet reported), then answers whether the user is below their limit. */
  check(userId: string, spends: Spend[]): Promise<SpendVerdict>;
  /** Answers written since the last report. */
  record(userId: string, spends: Spend[]): Promise<void>;
  /** The user's limit and spend now; null when Postgres cannot be reached. */
  state(userId: string): Promise<SpendState | null>;
  /** The user's limit changed: read everything again on the next call. */
  forget(): Promise<void>;
}

/** The meter's name: one per user. */
export const meterName = (userId: string): string => `usage:${userId}`;

/** The user's spend meter, typed by its RPC surface. */
export function usageMeter(env: Env, userId: string): UsageMeterRpc {
  return env.USAGE_METER.getByName(meterName(userId));
}

/** The UTC day of an instant, `YYYY-MM-DD`. */
export function utcDay(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}

/** The first day of the current period (UTC), `YYYY-MM-DD`. */
export function periodStart(period: SpendPeriod, ms: number): string {
  const day = utcDay(ms);
  return period === 'day' ? day : `${day.slice(0, 7)}-01`;
}

/** When the current period ends: the next UTC midnight, or the first of the next month (RFC 3339). */
export function periodEnd(period: SpendPeriod, ms: number): string {
  const d = new Date(ms);
  const end =
    period === 'day'
      ? Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate() + 1)
      : Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1);
  return new Date(end).toISOString();
}
