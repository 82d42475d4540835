// @ts-check
/**
 * The migration runner: applies sql/migrations/NNNNNN_name.up.sql in order, each in its own transaction
 * together with its row in schema_migrations, and reverts the newest with its .down.sql.
 * Concurrent runners serialise on an advisory lock.
 *
 * A migration may also have an online part, NNNNNN_name.online.sql: statements that must not run inside a
 * transaction (CREATE INDEX CONCURRENTLY, a backfill that commits batch by batch in a DO block). They are separated
 * by lines holding only `-- online statement --` and are sent one by one, after the up part has committed; the
 * version is recorded only once they all succeeded. So the up and online parts must both be safe to run again
 * (IF NOT EXISTS, CREATE OR REPLACE, DROP INDEX IF EXISTS before CREATE INDEX CONCURRENTLY): a runner that failed
 * half way simply runs the migration again. The down part stays one transaction.
 */
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const MIGRATIONS_DIR = fileURLToPath(new URL('../../sql/migrations/', import.meta.url));
const LOCK_KEY = 7_415_300_001; // arbitrary, project-wide constant for the migration lock
/** Separates the statements of an .online.sql part. */
export const ONLINE_SEPARATOR = /^-- online statement --[ \t]*$/m;

/**
 * The statements of an online part: split on the separator lines, blank or comment-only pieces dropped.
 * @param {string} sql
 * @returns {string[]}
 */
export function splitOnline(sql) {
  return sql
    .split(ONLINE_SEPARATOR)
    .map((s) => s.trim())
    .filter((s) => s.split('\n').some((line) => line.trim() !== '' && !line.trim().startsWith('--')));
}

/**
 * @typedef {{ version: number, name: string, up: string, down: string, online?: string[] }} Migration
 * @typedef {{ query: (text: string, values?: unknown[]) => Promise<{ rows: Record<string, unknown>[] }> }} PgLike
 */

/** @returns {Promise<Migration[]>} */
export async function loadMigrations(dir = MIGRATIONS_DIR) {
  const files = await readdir(dir);
  /** @type {Map<number, Partial<Migration>>} */
  const byVersion = new Map();
  for (const f of files) {
    const m = /^(\d{6})_([a-z0-9_]+)\.(up|down|online)\.sql$/.exec(f);
    if (!m || !m[1] || !m[2] || !m[3]) {
      if (f.endsWith('.sql')) throw new Error(`migration file name not understood: ${f} (want NNNNNN_name.up.sql / .down.sql / .online.sql)`);
      continue;
    }
    const version = Number(m[1]);
    const entry = byVersion.get(version) ?? { version, name: m[2] };
    if (entry.name !== m[2]) throw new Error(`migration ${m[1]} has two names: ${entry.name} and ${m[2]}`);
    const sql = await readFile(path.join(dir, f), 'utf8');
    if (m[3] !== 'online' && /^\s*(BEGIN|COMMIT)\s*;/im.test(sql)) throw new Error(`${f}: no BEGIN/COMMIT inside migrations; the runner wraps each one`);
    if (m[3] === 'up') entry.up = sql;
    else if (m[3] === 'down') entry.down = sql;
    else {
      const statements = splitOnline(sql);
      if (statements.length === 0) throw new Error(`${f}: an online part needs at least one statement`);
      entry.online = statements;
    }
    byVersion.set(version, entry);
  }
  const out = [...byVersion.values()].sort((a, b) => (a.version ?? 0) - (b.version ?? 0));
  out.forEach((m, i) => {
    if (m.up === undefined || m.down === undefined) throw new Error(`migration ${m.version} needs both .up.sql and .down.sql`);
    if (m.version !== i + 1) throw new Error(`migrations must be numbered 1..N without gaps; found ${m.version} at position ${i + 1}`);
  });
  return /** @type {Migration[]} */ (out);
}

/** @param {PgLike} db */
async function ensureTable(db) {
  await db.query(`CREATE TABLE IF NOT EXISTS schema_migrations (
    version integer PRIMARY KEY,
    name text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
  )`);
}

/** @param {PgLike} db @returns {Promise<number[]>} applied versions, ascending */
export async function appliedVersions(db) {
  await ensureTable(db);
  const r = await db.query('SELECT version FROM schema_migrations ORDER BY version');
  return r.rows.map((row) => Number(row.version));
}

/**
 * @template T
 * @param {PgLike} db
 * @param {() => Promise<T>} fn
 */
async function withLock(db, fn) {
  // Migrations may run long (index builds); the role's default statement_timeout is for the application.
  await db.query('SET statement_timeout = 0');
  // The wait for the lock gives up every 500 ms and starts again: a statement waiting on the lock holds a snapshot,
  // and CREATE INDEX CONCURRENTLY in the holder's online part waits for every older snapshot (a deadlock when it
  // waits for ours). Each new try has a newer snapshot, which the index build does not wait for.
  await db.query("SET lock_timeout = '500ms'");
  for (;;) {
    try {
      await db.query('SELECT pg_advisory_lock($1)', [LOCK_KEY]);
      break;
    } catch (e) {
      if (!(e instanceof Error && 'code' in e && e.code === '55P03')) throw e; // lock_not_available: try again
    }
  }
  await db.query('RESET lock_timeout');
  try {
    return await fn();
  } finally {
    await db.query('SELECT pg_advisory_unlock($1)', [LOCK_KEY]);
  }
}

/**
 * Applies every pending migration (or up to `target`).
 * @param {PgLike} db  one dedicated connection (transactions span several statements)
 * @param {{ log?: (line: string) => void, target?: number, migrations?: Migration[] }} [opts]
 * @returns {Promise<number[]>} versions applied now
 */
export async function migrateUp(db, opts = {}) {
  const log = opts.log ?? (() => {});
  const migrations = opts.migrations ?? (await loadMigrations());
  return await withLock(db, async () => {
    const done = new Set(await appliedVersions(db));
    /** @type {number[]} */
    const applied = [];
    for (const m of migrations) {
      if (done.has(m.version) || (opts.target !== undefined && m.version > opts.target)) continue;
      const record = 'INSERT INTO schema_migrations (version, name) VALUES ($1, $2)';
      await db.query('BEGIN');
      try {
        await db.query(m.up);
        if (!m.online) await db.query(record, [m.version, m.name]);
        await db.query('COMMIT');
      } catch (e) {
        await db.query('ROLLBACK');
        throw new Error(`migration ${m.version}_${m.name} failed: ${e instanceof Error ? e.message : String(e)}`);
      }
      if (m.online) {
        for (const [i, statement] of m.online.entries()) {
          try {
            await db.query(statement);
          } catch (e) {
            const why = e instanceof Error ? e.message : String(e);
            throw new Error(`migration ${m.version}_${m.name} failed in its online statement ${i + 1}: ${why} (run it again)`);
          }
        }
        await db.query(record, [m.version, m.name]);
      }
      log(`applied ${String(m.version).padStart(6, '0')}_${m.name}`);
      applied.push(m.version);
    }
    return applied;
  });
}

/**
 * Reverts the newest applied migration.
 * @param {PgLike} db
 * @param {{ log?: (line: string) => void, migrations?: Migration[] }} [opts]
 * @returns {Promise<number | null>} the version reverted, or null when none was applied
 */
export async function migrateDown(db, opts = {}) {
  const log = opts.log ?? (() => {});
  const migrations = opts.migrations ?? (await loadMigrations());
  return await withLock(db, async () => {
    const versions = await appliedVersions(db);
    const last = versions.at(-1);
    if (last === undefined) return null;
    const m = migrations.find((x) => x.version === last);
    if (!m) throw new Error(`applied migration ${last} has no file in sql/migrations`);
    await db.query('BEGIN');
    try {
      await db.query(m.down);
      await db.query('DELETE FROM schema_migrations WHERE version = $1', [m.version]);
      await db.query('COMMIT');
    } catch (e) {
      await db.query('ROLLBACK');
      throw new Error(`reverting ${m.version}_${m.name} failed: ${e instanceof Error ? e.message : String(e)}`);
    }
    log(`reverted ${String(m.version).padStart(6, '0')}_${m.name}`);
    return m.version;
  });
}
