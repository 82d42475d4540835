/**
 * Operations, in the Worker: the insights over chat_turns (one row per model call, written by the chat objects with
 * each answer), a chat's debug runs, and the purge of debug runs past the setting's retention.
 */
import { z } from 'zod';
import type { Db, Queryable } from '../core/db';
import { chatExists, getChatDebugRuns, getInsights, purgeDebugRuns, purgeTurnRollup, rollupTurnDays } from '../../sql/generated/operations.queries';
import { formatMicros } from '../core/usage-cost';
import { notFound } from '../core/errors';
import { getSetting } from '../core/site-config';
import { DebugRun, type Insights, type InsightsGroupBy } from '../core/shapes/operations';

const Num = z.union([z.number(), z.string()]).transform(Number);
const NumOrNull = Num.nullable();
const Int8 = z.union([z.number(), z.string(), z.bigint()]).transform((v) => BigInt(v));

const Row = z.object({
  key: z.string(),
  turns: Num,
  errors: z.record(z.string(), Num),
  first_token_p50: NumOrNull,
  first_token_p95: NumOrNull,
  total_p50: Num,
  total_p95: Num,
  input_tokens: Num,
  output_tokens: Num,
  cost_micros: Int8,
});

const ms = (v: number | null): number | null => (v === null ? null : Math.round(v));

export async function insights(conn: Queryable, q: { from: Date; to: Date; groupBy: InsightsGroupBy }): Promise<Insights> {
  const rows = await getInsights.run({ from: q.from.toISOString(), to: q.to.toISOString(), group_by: q.groupBy }, conn);
  return {
    from: q.from.toISOString(),
    to: q.to.toISOString(),
    group_by: q.groupBy,
    rows: rows.map((raw) => {
      const r = Row.parse(raw);
      return {
        key: r.key,
        turns: r.turns,
        errors: r.errors,
        first_token_ms: { p50: ms(r.first_token_p50), p95: ms(r.first_token_p95) },
        total_ms: { p50: ms(r.total_p50), p95: ms(r.total_p95) },
        input_tokens: r.input_tokens,
        output_tokens: r.output_tokens,
        cost: formatMicros(r.cost_micros),
      };
    }),
  };
}

const Timestamp = z.union([z.date(), z.string()]).transform((v) => new Date(v).toISOString());
const RunRow = DebugRun.extend({ started_at: Timestamp });

/** A chat's debug runs, newest first; 404 when there is no such chat. */
export async function chatDebugRuns(conn: Queryable, chatId: string, limit: number): Promise<DebugRun[]> {
  const [exists] = await chatExists.run({ chat_id: chatId }, conn);
  if (exists?.exists !== true) throw notFound();
  return (await getChatDebugRuns.run({ chat_id: chatId, limit }, conn)).map((r) => RunRow.parse(r));
}

const DAY_MS = 86_400_000;

/** Deletes debug runs older than the setting's retention_days, in batches, within the time budget. */
export async function purgeOldDebugRuns(db: Db, now: Date, opts: { batch?: number; budgetMs?: number } = {}): Promise<number> {
  const started = Date.now();
  const { retention_days } = await getSetting(db, 'debug_runs');
  const cutoff = new Date(now.getTime() - retention_days * DAY_MS).toISOString();
  const batch = opts.batch ?? 1000;
  let deleted = 0;
  for (;;) {
    const n = (await purgeDebugRuns.run({ cutoff, batch }, db)).length;
    deleted += n;
    if (n < batch || Date.now() - started >= (opts.budgetMs ?? 10_000)) return deleted;
  }
}

export interface RollupReport {
  /** Days rolled up by this run (UTC, YYYY-MM-DD). */
  days: string[];
  /** Days dropped because chat_turns holds no call that old any more. */
  purged: number;
  /** False when the time budget ran out with days left (the next run continues). */
  complete: boolean;
}

/**
 * The insights rollup (cron): drops rollup days older than the oldest stored call (the rollup follows chat_turns'
 * retention), then rolls up the complete UTC days not rolled up yet, `batch` days per statement, until none is left
 * or the budget is spent. Idempotent: each day is marked and written in one statement, once.
 */
export async function rollupInsights(db: Queryable, now: Date, opts: { batch?: number; budgetMs?: number } = {}): Promise<RollupReport> {
  const started = Date.now();
  const batch = opts.batch ?? 7;
  const purged = (await purgeTurnRollup.run(undefined, db)).length;
  const days: string[] = [];
  for (;;) {
    const rolled = await rollupTurnDays.run({ now: now.toISOString(), batch }, db);
    days.push(...rolled.map((r) => r.day));
    if (rolled.length < batch) return { days, purged, complete: true };
    if (Date.now() - started >= (opts.budgetMs ?? 10_000)) return { days, purged, complete: false };
  }
}
