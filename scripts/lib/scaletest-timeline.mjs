// @ts-check
/**
 * The scale test's timeline: every few seconds, the turns done, Postgres connections by state and by the statement
 * each last ran, open files and CPU of the stack, to show where a run slows down or stalls and what the stack holds
 * at that moment.
 */
import { cpuByGroup, fdsByGroup, round2, sampleProcesses } from './scaletest-report.mjs';
import { TAG, nameOf } from './scaletest-sql.mjs';

/**
 * @typedef {{ t: number, done: number, failed: number, turnsPerSecond: number, midTurn: number, errors: number,
 *   pgConnections: Record<string, number> | null, pgConnectionsByLastStatement: Record<string, number> | null,
 *   openFiles: Record<string, number>, cores: Record<string, number> }} TimelinePoint
 */

/**
 * The application's connections to this database now: how many in each state, and how many last ran each statement
 * (a chat object's insert or status update, a Worker request's read, an auth shard's lookup). Null when Postgres
 * does not answer.
 * @param {import('./scaletest-sql.mjs').PgLike} db
 * @param {import('./scaletest-sql.mjs').StatementNames} names
 * @returns {Promise<{ byState: Record<string, number>, byStatement: Record<string, number> } | null>}
 */
export async function pgConnections(db, names) {
  const r = await db
    .query(`${TAG} SELECT coalesce(state, '?') AS state, query FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'`)
    .catch(() => null);
  if (!r) return null;
  /** @type {Record<string, number>} */
  const byState = {};
  /** @type {Record<string, number>} */
  const byStatement = {};
  for (const row of r.rows) {
    const st = String(row.state);
    byState[st] = (byState[st] ?? 0) + 1;
    const q = String(row.query ?? '').trim() ? nameOf(names, String(row.query)).name : '(none yet)';
    byStatement[q] = (byStatement[q] ?? 0) + 1;
  }
  return { byState, byStatement };
}

/**
 * Samples every `sampleMs` until stopped; a sample still waiting for Postgres skips the next tick.
 * @param {{ db: import('./scaletest-sql.mjs').PgLike | null, names: import('./scaletest-sql.mjs').StatementNames,
 *   rootPid: number | null, publicPort: number | null, sampleMs: number, t0: number,
 *   first: ReturnType<typeof sampleProcesses>,
 *   turns: () => { done: number, failed: number, midTurn: number, errors: number } }} o
 *   `first`: the process sample the CPU of the first point counts from; `turns`: the run's counts now
 * @returns {{ points: TimelinePoint[], stop: () => void }}
 */
export function startTimeline({ db, names, rootPid, publicPort, sampleMs, t0, first, turns }) {
  /** @type {TimelinePoint[]} */
  const points = [];
  let prevSample = first;
  let prevDone = 0;
  let sampling = false;
  const timer = setInterval(() => {
    if (sampling) return;
    sampling = true;
    void (async () => {
      const now = sampleProcesses({ rootPid, publicPort, fds: true });
      const cpuNow = cpuByGroup(prevSample, now);
      prevSample = now;
      const conns = db ? await pgConnections(db, names) : null;
      const secs = (performance.now() - t0) / 1000;
      const { done, failed, midTurn, errors } = turns();
      points.push({
        t: round2(secs),
        done,
        failed,
        turnsPerSecond: round2((done - prevDone) / (sampleMs / 1000)),
        midTurn,
        errors,
        pgConnections: conns?.byState ?? null,
        pgConnectionsByLastStatement: conns?.byStatement ?? null,
        openFiles: fdsByGroup(now),
        cores: Object.fromEntries((cpuNow?.groups ?? []).map((g) => [g.group, g.cores])),
      });
      prevDone = done;
    })().finally(() => {
      sampling = false;
    });
  }, sampleMs);
  return { points, stop: () => clearInterval(timer) };
}
