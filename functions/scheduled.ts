/**
 * The cron trigger's work. Each job is independent: one failing is logged and does not stop the others.
 * Retention purge and auto-archive join this list with the retention work.
 */
import { dbSettings } from './env';
import { Db } from './lib/db';
import { keyRing } from './lib/keyring';
import { resealProviderKeys } from './services/chat-models';
import { runRetention, type RetentionReport } from './services/retention';

export interface ScheduledReport {
  at: string;
  jobs: Record<string, { ok: boolean; detail: string; ms: number }>;
  retention?: RetentionReport;
}

export interface ScheduledOptions {
  batchSize?: number;
  budgetMs?: number;
}

/** Runs every scheduled job once; `now` (and the purge's batch size and time budget) are injectable for tests. */
export async function runScheduled(env: Env, now: Date, opts: ScheduledOptions = {}): Promise<ScheduledReport> {
  const report: ScheduledReport = { at: now.toISOString(), jobs: {} };
  const db = new Db(dbSettings(env));
  const job = async (name: string, fn: () => Promise<string>) => {
    const started = Date.now();
    try {
      report.jobs[name] = { ok: true, detail: await fn(), ms: Date.now() - started };
    } catch (e) {
      report.jobs[name] = { ok: false, detail: e instanceof Error ? e.message : String(e), ms: Date.now() - started };
    }
  };
  try {
    await job('retention', async () => {
      const r = await runRetention(db, {
        now,
        ...opts,
        // A purged chat's object frees its cache and closes its sockets now rather than when next touched.
        onDeleted: async (ids) => {
          await Promise.allSettled(ids.map((id) => env.CHAT_ROOM.getByName(id).purge()));
        },
        onArchived: async (ids) => {
          await Promise.allSettled(ids.map((id) => env.CHAT_ROOM.getByName(id).refresh()));
        },
      });
      report.retention = r;
      if (!r.ran) return 'skipped: another run holds the lock';
      return `archived ${r.archived}, deleted ${r.deleted} in ${r.batches} batches${r.complete ? '' : ' (out of time; the next run continues)'}`;
    });
    // Key rotation: provider keys sealed by an older encryption key are re-sealed with the current one.
    await job('reseal_provider_keys', async () => {
      if (!env.PROVIDER_KEY_ENCRYPTION_KEY) return 'skipped: PROVIDER_KEY_ENCRYPTION_KEY is not set';
      const n = await resealProviderKeys(db, await keyRing(env.PROVIDER_KEY_ENCRYPTION_KEY));
      return `resealed ${n}`;
    });
  } finally {
    await db.close();
  }
  console.log(JSON.stringify({ level: 'info', msg: 'scheduled run', ...report }));
  return report;
}
