/**
 * The cron's file cleanup (docs/files.md): the bytes of files whose chats were deleted or purged, of files no live
 * message has used for 24 h, and of uploads that never finished, are removed from R2, then their rows. In bounded
 * batches, each marked in one transaction under the retention's advisory lock (no two batches of any run at once). A
 * row is marked (`deleted_at`, gone for every reader) before its bytes go and removed after, so no row ever points to
 * missing bytes, and a run cut short in between is finished by the next one.
 */
import { deleteChatFileRows, markUnusedChatFiles } from '../../sql/generated/files.queries';
import { tryRetentionLock } from '../../sql/generated/retention.queries';
import type { Db } from '../core/db';

export const UNUSED_FILE_MS = 24 * 60 * 60 * 1000;

export interface FileCleanupReport {
  ran: boolean;
  removed: number;
  batches: number;
  complete: boolean;
}

export async function cleanFiles(
  db: Db,
  bucket: R2Bucket,
  opts: { now: Date; batchSize?: number; budgetMs?: number },
): Promise<FileCleanupReport> {
  const started = Date.now();
  const batch = Math.min(opts.batchSize ?? 500, 1000); // R2 deletes at most 1000 keys at once
  const budget = opts.budgetMs ?? 10_000;
  const cutoff = new Date(opts.now.getTime() - UNUSED_FILE_MS);
  const report: FileCleanupReport = { ran: false, removed: 0, batches: 0, complete: true };
  for (;;) {
    const marked = await db.inTx(async (tx) => {
      const [lock] = await tryRetentionLock.run(undefined, tx);
      return lock?.locked ? await markUnusedChatFiles.run({ cutoff, now: opts.now, batch }, tx) : null;
    });
    if (!marked) {
      if (report.batches > 0) report.complete = false;
      break;
    }
    report.ran = true;
    report.batches += 1;
    if (marked.length === 0) break;
    const rows = marked.flatMap((r) => (r.id !== null && r.r2_key !== null ? [{ id: r.id, key: r.r2_key }] : []));
    await bucket.delete(rows.map((r) => r.key));
    const gone = await deleteChatFileRows.run({ ids: rows.map((r) => r.id) }, db);
    report.removed += gone.length;
    if (marked.length < batch) break;
    if (Date.now() - started >= budget) {
      report.complete = false;
      break;
    }
  }
  return report;
}
