/**
 * One object per user (`usage:<userId>`): their spend in the current period against their limit. Every chat object
 * of the user asks it before a priced turn calls its model, and reports each priced answer once it is written, so it
 * is the one copy of the user's spend in the deployment: another chat's spend counts at the next check, wherever
 * that chat runs. The truth stays in Postgres (the ledger, the limits); this object reads it in one statement when
 * it starts, when a period begins, when an owner changes the user's limit, and at most every READ_TTL_MS otherwise
 * (which catches a report lost with a crashed chat object, and a change of the deployment default).
 */
import { DurableObject } from 'cloudflare:workers';
import { getSpendState, type IGetSpendStateResult } from '../sql/generated/usage.queries';
import { Db, isTransient } from '../functions/core/db';
import { dbSettings } from '../functions/core/settings';
import {
  periodEnd,
  periodStart,
  SpendLimit,
  SpendPeriod,
  utcDay,
  type Spend,
  type SpendState,
  type SpendVerdict,
  type UsageMeterRpc,
} from '../functions/core/usage-meter-api';
import { formatMicros, normalizeAmount, toMicros } from '../functions/core/usage-cost';
import { log } from '../functions/core/log';

/** How long a read of the ledger and the limits stands before the next call reads them again. */
export const READ_TTL_MS = 30_000;

/** What the meter knows: the user's limit, and their spend since the start of the day and of the month it read. */
interface View {
  userId: string;
  limit: SpendLimit;
  override: boolean;
  day: string;
  month: string;
  spentDay: bigint;
  spentMonth: bigint;
  readAt: number;
  /** Reports or a limit change arrived while the read was in flight (it may or may not include them): read again. */
  doubtful: boolean;
}

/** What happens while a read is in flight: reports, and a change of the user's limit. */
interface Meanwhile {
  spends: Spend[];
  changed: boolean;
}

const NO_LIMIT: SpendLimit = { period: 'month', amount: null };

/** The deployment default as stored in site_configs; no limit when unset or unreadable (logged). */
function defaultLimit(raw: string | null): SpendLimit {
  if (raw === null) return NO_LIMIT;
  try {
    const parsed = SpendLimit.safeParse(JSON.parse(raw));
    if (parsed.success) return { period: parsed.data.period, amount: normalizeAmount(parsed.data.amount) };
  } catch {
    // logged below
  }
  log('warn', 'invalid stored spend_limit setting, treated as no limit');
  return NO_LIMIT;
}

function viewOf(userId: string, row: IGetSpendStateResult | undefined, now: number): View {
  const period = SpendPeriod.safeParse(row?.override_period);
  const own = period.success && row?.override_amount_micros != null;
  return {
    userId,
    limit: own ? { period: period.data, amount: formatMicros(BigInt(row.override_amount_micros ?? '0')) } : defaultLimit(row?.default_limit ?? null),
    override: own,
    day: periodStart('day', now),
    month: periodStart('month', now),
    spentDay: BigInt(row?.spent_day ?? '0'),
    spentMonth: BigInt(row?.spent_month ?? '0'),
    readAt: now,
    doubtful: false,
  };
}

function add(view: View, s: Spend): void {
  const micros = BigInt(s.micros);
  if (s.day >= view.day) view.spentDay += micros;
  if (s.day >= view.month) view.spentMonth += micros;
}

export class UsageMeter extends DurableObject<Env> implements UsageMeterRpc {
  /** The clock: tests move it past the end of a period. */
  now: () => number = () => Date.now();
  private dbConn: Db | null = null;
  private view: View | null = null;
  /** The read in flight, and what was reported or changed while it was. */
  private reading: { promise: Promise<View>; meanwhile: Meanwhile } | null = null;

  private get db(): Db {
    this.dbConn ??= new Db(dbSettings(this.env, { durable: true }));
    return this.dbConn;
  }

  check(userId: string, spends: Spend[]): Promise<SpendVerdict> {
    this.report(spends);
    return this.answer<SpendVerdict>(async () => {
      const now = this.now();
      const v = await this.current(userId, now);
      const amount = v.limit.amount;
      if (amount === null) return { ok: true };
      const spent = v.limit.period === 'day' ? v.spentDay : v.spentMonth;
      return spent < toMicros(amount) ? { ok: true } : { ok: false, reason: 'limit', resetsAt: periodEnd(v.limit.period, now) };
    }, { ok: false, reason: 'unavailable' });
  }

  record(_userId: string, spends: Spend[]): Promise<void> {
    this.report(spends);
    return Promise.resolve();
  }

  state(userId: string): Promise<SpendState | null> {
    return this.answer<SpendState | null>(async () => {
      const now = this.now();
      const v = await this.current(userId, now);
      const spent = v.limit.period === 'day' ? v.spentDay : v.spentMonth;
      return { ...v.limit, spent: formatMicros(spent), resets_at: periodEnd(v.limit.period, now), override: v.override };
    }, null);
  }

  forget(): Promise<void> {
    this.view = null;
    if (this.reading) this.reading.meanwhile.changed = true;
    return Promise.resolve();
  }

  /** Runs a read; a database that cannot be reached is `unavailable`, not an error crossing the RPC. */
  private async answer<T>(fn: () => Promise<T>, unavailable: T): Promise<T> {
    try {
      return await fn();
    } catch (e) {
      if (!isTransient(e)) throw e;
      return unavailable;
    }
  }

  private report(spends: Spend[]): void {
    for (const s of spends) {
      if (this.view) add(this.view, s);
      this.reading?.meanwhile.spends.push(s);
    }
  }

  /** The view for now: the one held while fresh, else a new read (one at a time). */
  private async current(userId: string, now: number): Promise<View> {
    const v = this.view;
    if (v && v.userId === userId && !v.doubtful && now - v.readAt < READ_TTL_MS && v.day === utcDay(now)) return v;
    if (this.reading) return await this.reading.promise;
    const meanwhile: Meanwhile = { spends: [], changed: false };
    const promise = getSpendState
      .run({ user_id: userId, day_start: periodStart('day', now), month_start: periodStart('month', now) }, this.db)
      .then(([row]) => {
        const view = viewOf(userId, row, now);
        // What arrived meanwhile is counted (perhaps twice, never missed) until the next read settles it.
        for (const s of meanwhile.spends) add(view, s);
        view.doubtful = meanwhile.spends.length > 0 || meanwhile.changed;
        this.view = view;
        return view;
      })
      .finally(() => {
        if (this.reading?.meanwhile === meanwhile) this.reading = null;
      });
    this.reading = { promise, meanwhile };
    return await promise;
  }
}
