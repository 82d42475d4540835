// @ts-check
/**
 * The migration runner: applies sql/migrations/NNNNNN_name.up.sql in order, each in its own transaction
 * together with its row in schema_migrations, and reverts the newest with its .down.sql.
 * Concurrent runners serialise on an advisory lock.
 */
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const MIGRATIONS_DIR = fileURLToPath(new URL('../../sql/migrations/', import.meta.url));
const LOCK_KEY = 7_415_300_001; // arbitrary, project-wide constant for the migration lock
/**
 * Numbers reserved for the third round's features, built in parallel on their own branches (files 12, search 13,
 * operations 14, groups and sharing 15, single sign-on and audit 16, conversation tools 17): one may be absent while
 * a later one is present. Drop this once all of them are merged.
 */
const RESERVED = new Set([12, 13, 14, 15, 16, 17]);

/**
 * @typedef {{ version: number, name: string, up: string, down: string }} Migration
 * @typedef {{ query: (text: string, values?: unknown[]) => Promise<{ rows: Record<string, unknown>[] }> }} PgLike
 */

/** @returns {Promise<Migration[]>} */
export async function loadMigrations(dir = MIGRATIONS_DIR) {
  const files = await readdir(dir);
  /** @type {Map<number, Partial<Migration>>} */
  const byVersion = new Map();
  for (const f of files) {
    const m = /^(\d{6})_([a-z0-9_]+)\.(up|down)\.sql$/.exec(f);
    if (!m || !m[1] || !m[2] || !m[3]) {
      if (f.endsWith('.sql')) throw new Error(`migration file name not understood: ${f} (want NNNNNN_name.up.sql / .down.sql)`);
      continue;
    }
    const version = Number(m[1]);
    const entry = byVersion.get(version) ?? { version, name: m[2] };
    if (entry.name !== m[2]) throw new Error(`migration ${m[1]} has two names: ${entry.name} and ${m[2]}`);
    const sql = await readFile(path.join(dir, f), 'utf8');
    if (/^\s*(BEGIN|COMMIT)\s*;/im.test(sql)) throw new Error(`${f}: no BEGIN/COMMIT inside migrations; the runner wraps each one`);
    if (m[3] === 'up') entry.up = sql;
    else entry.down = sql;
    byVersion.set(version, entry);
  }
  const out = [...byVersion.values()].sort((a, b) => (a.version ?? 0) - (b.version ?? 0));
  let expected = 1;
  out.forEach((m, i) => {
    if (m.up === undefined || m.down === undefined) throw new Error(`migration ${m.version} needs both .up.sql and .down.sql`);
    // A number reserved for a feature built on another branch may be missing until that branch is merged.
    while (RESERVED.has(expected) && (m.version ?? 0) > expected) expected += 1;
    if (m.version !== expected) throw new Error(`migrations must be numbered 1..N without gaps; found ${m.version} at position ${i + 1}`);
    expected += 1;
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
  await db.query('SELECT pg_advisory_lock($1)', [LOCK_KEY]);
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
      await db.query('BEGIN');
      try {
        await db.query(m.up);
        await db.query('INSERT INTO schema_migrations (version, name) VALUES ($1, $2)', [m.version, m.name]);
        await db.query('COMMIT');
      } catch (e) {
        await db.query('ROLLBACK');
        throw new Error(`migration ${m.version}_${m.name} failed: ${e instanceof Error ? e.message : String(e)}`);
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
