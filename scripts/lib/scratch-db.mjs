// @ts-check
/**
 * A throwaway Postgres for tools that need one (codegen, bench, node-side tests): an embedded server in a
 * temporary data folder (.data/<purpose>-<pid>-<port>, or its place under the state folder when the server's user
 * cannot reach the project: scripts/lib/pg-home.mjs) on a free port, removed on stop (and when it fails to start).
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { startLocalPostgres } from './local-pg.mjs';
import { migrateUp } from './migrate.mjs';
import { freePort } from './ports.mjs';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/**
 * @param {string} purpose a short name for the data folder
 * @param {{ crashSafe?: boolean }} [opts] crashSafe: commits survive the server being killed (outage tests)
 */
export async function startScratchPostgres(purpose, opts = {}) {
  const port = await freePort();
  return await startLocalPostgres({ dataDir: path.join(ROOT, '.data', `${purpose}-${process.pid}-${port}`), port, persistent: false, ...opts });
}

/**
 * A scratch Postgres with one database, `chatd_<purpose>` with the migrations applied, for the benches: `fn` gets a
 * client of it; the client and the server are gone after, whatever happened.
 * @template T
 * @param {string} purpose a short name for the data folder and the database (letters, digits, dashes)
 * @param {(db: pg.Client) => Promise<T>} fn
 * @returns {Promise<T>}
 */
export async function withMigratedScratch(purpose, fn) {
  const server = await startScratchPostgres(purpose);
  const name = `chatd_${purpose.replace(/-/g, '_')}`;
  const admin = new pg.Client(server.url);
  /** @type {pg.Client | null} */
  let db = null;
  try {
    await admin.connect();
    await admin.query(`CREATE DATABASE ${name}`);
    db = new pg.Client(server.urlFor(name));
    await db.connect();
    await migrateUp(db);
    return await fn(db);
  } finally {
    await db?.end().catch(() => undefined);
    await admin.end().catch(() => undefined);
    await server.stop();
  }
}
