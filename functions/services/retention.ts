/**
 * The retention purge (Coder's dbpurge, on a cron trigger): auto-archive chats idle longer than
 * `auto_archive_days`, then delete archived chats untouched for `retention_days`, in bounded batches until done or
 * out of time; the next run continues. Each batch is one transaction under a transaction-level advisory lock, so
 * no two batches run at once and no lock outlives its transaction (which a transaction-mode pooler requires).
 * The clock is injected.
 */
import type { Db, Tx } from '../core/db';
import { archiveIdleChats, deleteOldChats, tryRetentionLock } from '../../sql/generated/retention.queries';
import { getSetting } from '../core/site-config';

export interface RetentionOptions {
  now: Date;
  batchSize?: number;
  /** Stop starting new batches after this long. */
  budgetMs?: number;
  /** Told about every deleted chat, to free what its Durable Object holds (best effort). */
  onDeleted?: (chatIds: string[]) => Promise<void>;
  /** Told about every auto-archived chat, so its object drops the row it holds in memory. */
  onArchived?: (chatIds: string[]) => Promise<void>;
}

export interface RetentionReport {
  ran: boolean;
  archived: number;
  deleted: number;
  batches: number;
  /** False when the time budget ran out with work left. */
  complete: boolean;
  retentionDays: number;
  autoArchiveDays: number;
  ms: number;
}

const DAY = 86_400_000;

export async function runRetention(db: Db, opts: RetentionOptions): Promise<RetentionReport> {
  const started = Date.now();
  const batch = opts.batchSize ?? 1000;
  const budget = opts.budgetMs ?? 20_000;
  const report: RetentionReport = { ran: false, archived: 0, deleted: 0, batches: 0, complete: true, retentionDays: 0, autoArchiveDays: 0, ms: 0 };
  /** Runs one batch in its own transaction under the lock; null when another run's batch holds it. */
  const locked = async <T,>(fn: (tx: Tx) => Promise<T>): Promise<{ value: T } | null> =>
    await db.inTx(async (tx) => {
      const [lock] = await tryRetentionLock.run(undefined, tx);
      return lock?.locked ? { value: await fn(tx) } : null;
    });
  /** Set when another run's batch held the lock: this run stops there (and counts as skipped if it did nothing). */
  const state = { yielded: false };
  const yieldToOther = () => {
    state.yielded = true;
    if (report.batches > 0) report.complete = false;
  };
  try {
    report.retentionDays = await getSetting(db, 'retention_days');
    report.autoArchiveDays = await getSetting(db, 'auto_archive_days');
    const outOfTime = () => Date.now() - started >= budget;

    if (report.autoArchiveDays > 0) {
      const cutoff = new Date(opts.now.getTime() - report.autoArchiveDays * DAY);
      // At least one batch per run, so a tiny budget still makes progress.
      for (;;) {
        const got = await locked((tx) => archiveIdleChats.run({ now: opts.now, cutoff, batch }, tx));
        if (!got) {
          yieldToOther();
          break;
        }
        const rows = got.value;
        report.batches += 1;
        report.archived += rows.length;
        if (rows.length > 0 && opts.onArchived) await opts.onArchived(rows.map((r) => r.id));
        if (rows.length < batch) break;
        if (outOfTime()) {
          report.complete = false;
          break;
        }
      }
    }
    if (report.retentionDays > 0 && report.complete && !state.yielded) {
      const cutoff = new Date(opts.now.getTime() - report.retentionDays * DAY);
      for (;;) {
        const got = await locked((tx) => deleteOldChats.run({ cutoff, batch }, tx));
        if (!got) {
          yieldToOther();
          break;
        }
        const rows = got.value;
        report.batches += 1;
        report.deleted += rows.length;
        if (rows.length > 0 && opts.onDeleted) await opts.onDeleted(rows.map((r) => r.id));
        if (rows.length < batch) break;
        if (outOfTime()) {
          report.complete = false;
          break;
        }
      }
    }
  } finally {
    report.ran = !state.yielded || report.batches > 0;
    report.ms = Date.now() - started;
  }
  return report;
}
