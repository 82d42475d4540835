// @ts-check
/**
 * A throwaway Postgres for tools that need one (codegen, bench, node-side tests): an embedded server in a
 * temporary data folder (.data/<purpose>-<pid>-<port>, or its place under the state folder when the server's user
 * cannot reach the project: scripts/lib/pg-home.mjs) on a free port, removed on stop (and when it fails to start).
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startLocalPostgres } from './local-pg.mjs';
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
