/**
 * The retention purge (Coder's dbpurge, on a cron trigger): under an advisory lock, auto-archive chats idle
 * longer than `auto_archive_days`, then delete archived chats untouched for `retention_days`, in bounded
 * batches until done or out of time; the next run continues. The clock is injected.
 */
import type { Db } from '../lib/db';
import { archiveIdleChats, deleteOldChats, releaseRetentionLock, tryRetentionLock } from '../../sql/generated/retention.queries';
import { getSetting } from './site-config';

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
  const [lock] = await tryRetentionLock.run(undefined, db);
  if (!lock?.locked) {
    report.ms = Date.now() - started;
    return report; // another run holds it
  }
  report.ran = true;
  try {
    report.retentionDays = await getSetting(db, 'retention_days');
    report.autoArchiveDays = await getSetting(db, 'auto_archive_days');
    const outOfTime = () => Date.now() - started >= budget;

    if (report.autoArchiveDays > 0) {
      const cutoff = new Date(opts.now.getTime() - report.autoArchiveDays * DAY);
      // At least one batch per run, so a tiny budget still makes progress.
      for (;;) {
        const rows = await archiveIdleChats.run({ now: opts.now, cutoff, batch }, db);
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
    if (report.retentionDays > 0 && report.complete) {
      const cutoff = new Date(opts.now.getTime() - report.retentionDays * DAY);
      for (;;) {
        const rows = await deleteOldChats.run({ cutoff, batch }, db);
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
    await releaseRetentionLock.run(undefined, db);
    report.ms = Date.now() - started;
  }
  return report;
}
