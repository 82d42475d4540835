/**
 * The cron trigger's work. Each job is independent: one failing is logged and does not stop the others.
 * Retention purge and auto-archive join this list with the retention work.
 */
import { dbSettings } from './env';
import { Db } from './core/db';
import { keyRing } from './core/keyring';
import { resealProviderKeys } from './services/chat-models';
import { resealMcpServerHeaders } from './services/mcp-servers';
import { runRetention, type RetentionReport } from './services/retention';
import { purgeOldDebugRuns, rollupInsights } from './services/operations';
import { log } from './core/log';
import { cleanFiles, type FileCleanupReport } from './services/file-cleanup';
import { purgeAudit } from './services/audit-query';
import { getSetting } from './core/site-config';
import { purgeOidcFlows } from '../sql/generated/oidc.queries';

export interface ScheduledReport {
  at: string;
  jobs: Record<string, { ok: boolean; detail: string; ms: number }>;
  retention?: RetentionReport;
  files?: FileCleanupReport;
}

/** What the cron asks of a chat's object after deleting or archiving the chat. */
export interface ChatObjectCalls {
  purge(): Promise<void>;
  refresh(): Promise<void>;
}

export interface ScheduledOptions {
  batchSize?: number;
  budgetMs?: number;
  /** Pauses before each retry of a failed purge/refresh call; its length bounds the retries. */
  retryDelaysMs?: readonly number[];
  /** The object of a chat (tests wrap it to make calls fail). */
  chatObject?: (env: Env, chatId: string) => ChatObjectCalls;
}

/**
 * A purge or refresh that fails leaves the object serving a chat that is gone (or holding an archived one as
 * live), so each call is retried after these pauses; what still fails is logged as an error (the object then
 * learns on its next load, or when evicted).
 */
const RETRY_DELAYS_MS: readonly number[] = [200, 1000, 5000];

const defaultChatObject = (env: Env, chatId: string): ChatObjectCalls => env.CHAT_ROOM.getByName(chatId);

/** Calls `what` on every chat's object, retrying each failure; answers how many never succeeded. */
async function tellChats(
  ids: string[],
  what: keyof ChatObjectCalls,
  object: (chatId: string) => ChatObjectCalls,
  delays: readonly number[],
): Promise<number> {
  const outcomes = await Promise.all(
    ids.map(async (id) => {
      for (let attempt = 0; ; attempt++) {
        try {
          await object(id)[what]();
          return true;
        } catch (e) {
          const error = e instanceof Error ? e.message : String(e);
          const pause = delays[attempt];
          const last = pause === undefined;
          log(last ? 'error' : 'warn', `chat ${what} failed`, { chat_id: id, attempt: attempt + 1, error, retrying: !last });
          if (last) return false;
          await new Promise((r) => setTimeout(r, pause));
        }
      }
    }),
  );
  return outcomes.filter((ok) => !ok).length;
}

/** Runs every scheduled job once; `now` (and the purge's batch size and time budget) are injectable for tests. */
export async function runScheduled(env: Env, now: Date, opts: ScheduledOptions = {}): Promise<ScheduledReport> {
  const report: ScheduledReport = { at: now.toISOString(), jobs: {} };
  const db = new Db(dbSettings(env));
  const delays = opts.retryDelaysMs ?? RETRY_DELAYS_MS;
  const object = (chatId: string) => (opts.chatObject ?? defaultChatObject)(env, chatId);
  const failed = { purge: 0, refresh: 0 };
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
        batchSize: opts.batchSize,
        budgetMs: opts.budgetMs,
        // A purged chat's object frees its cache and closes its sockets now rather than when next touched.
        onDeleted: async (ids) => {
          failed.purge += await tellChats(ids, 'purge', object, delays);
        },
        onArchived: async (ids) => {
          failed.refresh += await tellChats(ids, 'refresh', object, delays);
        },
      });
      report.retention = r;
      if (!r.ran) return 'skipped: another run holds the lock';
      const unreached = failed.purge + failed.refresh > 0 ? `; objects not told: ${failed.purge} purges, ${failed.refresh} refreshes` : '';
      return `archived ${r.archived}, deleted ${r.deleted} in ${r.batches} batches${r.complete ? '' : ' (out of time; the next run continues)'}${unreached}`;
    });
    // After the purge, so a purged chat's files go in the same run.
    await job('files', async () => {
      const r = await cleanFiles(db, env.FILES, { now, batchSize: opts.batchSize, budgetMs: opts.budgetMs });
      report.files = r;
      if (!r.ran) return 'skipped: another run holds the lock';
      return `removed ${r.removed} files in ${r.batches} batches${r.complete ? '' : ' (the next run continues)'}`;
    });
    // The insights rollup, after the purge (its days follow chat_turns'): complete UTC days not rolled up yet.
    await job('insights_rollup', async () => {
      const r = await rollupInsights(db, now, { budgetMs: opts.budgetMs });
      return `rolled up ${r.days.length} days${r.complete ? '' : ' (out of time; the next run continues)'}, dropped ${r.purged}`;
    });
    // Debug runs past the debug_runs setting's retention_days (they also go with their chat).
    await job('purge_debug_runs', async () => `deleted ${await purgeOldDebugRuns(db, now, { batch: opts.batchSize, budgetMs: opts.budgetMs })}`);
    // Audit events past audit_retention_days (default 365), in batches; and sign-in flows long expired.
    await job('purge_audit', async () => {
      const n = await purgeAudit(db, await getSetting(db, 'audit_retention_days'), opts.batchSize ?? 5000);
      await purgeOidcFlows.run(undefined, db);
      return `deleted ${n}`;
    });
    // Key rotation: provider keys sealed by an older encryption key are re-sealed with the current one.
    await job('reseal_provider_keys', async () => {
      if (!env.PROVIDER_KEY_ENCRYPTION_KEY) return 'skipped: PROVIDER_KEY_ENCRYPTION_KEY is not set';
      const n = await resealProviderKeys(db, await keyRing(env.PROVIDER_KEY_ENCRYPTION_KEY));
      return `resealed ${n}`;
    });
    // The same for MCP servers' headers.
    await job('reseal_mcp_headers', async () => {
      if (!env.PROVIDER_KEY_ENCRYPTION_KEY) return 'skipped: PROVIDER_KEY_ENCRYPTION_KEY is not set';
      const n = await resealMcpServerHeaders(db, await keyRing(env.PROVIDER_KEY_ENCRYPTION_KEY));
      return `resealed ${n}`;
    });
  } finally {
    await db.close();
  }
  log('info', 'scheduled run', { ...report });
  return report;
}
