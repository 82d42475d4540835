// @ts-check
/**
 * A throwaway Postgres for tools that need one (codegen, node-side tests): an embedded server in a
 * temporary data folder on a free port, removed on stop.
 */
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startLocalPostgres } from './local-pg.mjs';
import { freePort } from './ports.mjs';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** @param {string} purpose a short name for the data folder */
export async function startScratchPostgres(purpose) {
  const port = await freePort();
  const dataDir = path.join(ROOT, '.data', `${purpose}-${process.pid}-${port}`, 'pg');
  const pg = await startLocalPostgres({ dataDir, port, persistent: false });
  return {
    ...pg,
    stop: async () => {
      await pg.stop();
      await rm(path.dirname(dataDir), { recursive: true, force: true });
    },
  };
}
