// @ts-check
/**
 * Migration CLI (`npm run migrate -- <command>`):
 *   node scripts/migrate.mjs up      apply every pending migration in sql/migrations
 *   node scripts/migrate.mjs down    revert the newest applied migration
 *   node scripts/migrate.mjs status  list applied and pending versions
 *
 * Which database:
 *   - DATABASE_URL when set (any Postgres >= 15, or Neon);
 *   - otherwise the local dev Postgres, postgres://postgres@127.0.0.1:$CHATD_PG_PORT/chatd (port 54329 by
 *     default): when it already accepts connections (`npm run dev` is running) it is used as is; otherwise the
 *     embedded server is started on its persistent data folder (.data/postgres) for this one command, the
 *     `chatd` database is created when missing, and the server is stopped again afterwards.
 *
 * Also a small module: scripts/dev.mjs imports the helpers exported here.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import pg from 'pg';
import { appliedVersions, loadMigrations, migrateDown, migrateUp } from './lib/migrate.mjs';
import { localPgUrl } from './lib/pg-server.mjs';

export const ROOT = fileURLToPath(new URL('../', import.meta.url));
/** The persistent data folder of the local dev Postgres. */
export const DEV_DATA_DIR = path.join(ROOT, '.data', 'postgres');
/** The database the dev stack uses on the local server. */
export const DEV_DATABASE = 'chatd';
export const DEFAULT_PG_PORT = 54329;

const LOOPBACK_HOSTS = new Set(['127.0.0.1', 'localhost', '::1', '[::1]']);

/**
 * A TCP port from an environment variable, or the default when it is unset or empty.
 * @param {string} name
 * @param {number} fallback
 * @returns {number}
 */
export function envPort(name, fallback) {
  const raw = process.env[name];
  if (raw === undefined || raw.trim() === '') return fallback;
  const port = Number(raw);
  if (!/^\d+$/.test(raw.trim()) || !Number.isInteger(port) || port < 1 || port > 65535) {
    throw new Error(`${name} must be a TCP port number between 1 and 65535, got ${JSON.stringify(raw)}`);
  }
  return port;
}

/**
 * The URL with its password (and any `password` query parameter) replaced by `***`, safe to print.
 * @param {string} url
 * @returns {string}
 */
export function maskUrl(url) {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    for (const key of [...u.searchParams.keys()]) {
      if (/pass/i.test(key)) u.searchParams.set(key, '***');
    }
    return u.toString();
  } catch {
    // Not a URL we can parse: hide anything between "user:" and "@", and password parameters.
    return url.replace(/(\/\/[^:/@]*:)[^@]*@/, '$1***@').replace(/(pass[a-z]*=)[^&\s]*/gi, '$1***');
  }
}

/**
 * Secrets of a URL (its password), for scrubbing them from error messages that might echo the URL.
 * @param {string} url
 * @returns {string[]}
 */
export function urlSecrets(url) {
  try {
    const u = new URL(url);
    /** @type {string[]} */
    const out = [];
    if (u.password) out.push(u.password, decodeURIComponent(u.password));
    for (const [k, v] of u.searchParams) if (/pass/i.test(k) && v) out.push(v);
    return out.filter((s) => s.length >= 3);
  } catch {
    return [];
  }
}

/**
 * The message of an error, with the given secrets removed.
 * @param {unknown} e
 * @param {string[]} [secrets]
 * @returns {string}
 */
export function errorMessage(e, secrets = []) {
  let msg = e instanceof Error ? e.message : String(e);
  if (!msg && typeof e === 'object' && e !== null && 'code' in e) msg = String(e.code);
  for (const s of secrets) msg = msg.split(s).join('***');
  return msg || 'unknown error';
}

/**
 * True when the URL's host is this machine (the local WebSocket proxy only forwards to loopback).
 * @param {string} url
 * @returns {boolean}
 */
export function isLoopbackUrl(url) {
  try {
    return LOOPBACK_HOSTS.has(new URL(url).hostname);
  } catch {
    return false;
  }
}

/**
 * The SQLSTATE or errno code of an error, if any.
 * @param {unknown} e
 * @returns {string | undefined}
 */
export function errorCode(e) {
  if (typeof e === 'object' && e !== null && 'code' in e && typeof e.code === 'string') return e.code;
  return undefined;
}

/**
 * Creates the database on the server of `adminUrl` unless it exists.
 * @param {string} adminUrl  a URL of a database that exists (e.g. `postgres`) on that server
 * @param {string} name
 * @returns {Promise<boolean>} true when it was created now
 */
export async function ensureDatabase(adminUrl, name) {
  const client = new pg.Client({ connectionString: adminUrl, connectionTimeoutMillis: 10_000 });
  await client.connect();
  try {
    const r = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    if (r.rowCount) return false;
    try {
      await client.query(`CREATE DATABASE ${client.escapeIdentifier(name)}`);
      return true;
    } catch (e) {
      if (errorCode(e) === '42P04') return false; // created concurrently
      throw e;
    }
  } finally {
    await client.end().catch(() => undefined);
  }
}

/**
 * @typedef {object} Target
 * @property {string} url
 * @property {string} label   printable description (password masked)
 * @property {string[]} secrets
 * @property {() => Promise<void>} close
 */

/**
 * Tries to open a connection to see whether a usable server is there.
 * @param {string} url
 * @returns {Promise<{ ok: true } | { ok: false, refused: boolean, code: string | undefined, error: unknown }>}
 */
async function probe(url) {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3_000 });
  try {
    await client.connect();
    return { ok: true };
  } catch (e) {
    const code = errorCode(e);
    return { ok: false, refused: code === 'ECONNREFUSED', code, error: e };
  } finally {
    await client.end().catch(() => undefined);
  }
}

/**
 * The database to migrate: DATABASE_URL, the running dev Postgres, or the embedded one started for this command.
 * @param {{ verbose: boolean, log: (line: string) => void }} opts
 * @returns {Promise<Target>}
 */
async function openTarget({ verbose, log }) {
  const fromEnv = process.env.DATABASE_URL;
  if (fromEnv) {
    return { url: fromEnv, label: `${maskUrl(fromEnv)} (DATABASE_URL)`, secrets: urlSecrets(fromEnv), close: async () => {} };
  }
  const port = envPort('CHATD_PG_PORT', DEFAULT_PG_PORT);
  const url = localPgUrl(port, DEV_DATABASE);
  const running = await probe(url);
  if (running.ok) return { url, label: `${url} (the running dev Postgres)`, secrets: [], close: async () => {} };
  if (!running.refused) {
    if (running.code === '3D000') {
      // The dev server runs but has no chatd database yet.
      await ensureDatabase(localPgUrl(port, 'postgres'), DEV_DATABASE);
      log(`created database ${DEV_DATABASE} on 127.0.0.1:${port}`);
      return { url, label: `${url} (the running dev Postgres)`, secrets: [], close: async () => {} };
    }
    throw new Error(
      `something listens on 127.0.0.1:${port} but ${url} is not usable (${errorMessage(running.error)}). ` +
        'If that is not the chatd dev Postgres, set CHATD_PG_PORT to another port, or DATABASE_URL to the database to migrate.',
    );
  }

  // Nothing listens: start the embedded server on the persistent data folder for this one command (as root, in a
  // project the `postgres` user cannot reach, that folder is kept under /var/lib/chatd-edge/: scripts/lib/pg-home.mjs).
  // Imported lazily: local-pg.mjs installs signal and exit hooks, which only this path needs.
  const { startLocalPostgres } = await import('./lib/local-pg.mjs');
  const { dataLocation } = await import('./lib/pg-home.mjs');
  const where = await dataLocation(DEV_DATA_DIR);
  const fresh = !existsSync(path.join(where.dataDir, 'PG_VERSION'));
  const shown = where.relocated ? where.dataDir : path.relative(ROOT, DEV_DATA_DIR);
  log(`starting the local Postgres on 127.0.0.1:${port} (${fresh ? 'new cluster in' : 'data in'} ${shown})`);
  // A failure rejects with a message naming the cause and the fix (with Postgres' last lines when they help).
  const server = await startLocalPostgres({
    dataDir: DEV_DATA_DIR,
    port,
    persistent: true,
    log: (line) => {
      if (verbose) for (const l of line.split('\n')) if (l.trim()) log(`[pg] ${l}`);
    },
    notice: log,
  });
  const stop = server.stop;
  try {
    if (await ensureDatabase(server.url, DEV_DATABASE)) log(`created database ${DEV_DATABASE}`);
  } catch (e) {
    await stop().catch(() => undefined);
    throw e;
  }
  return {
    url: server.urlFor(DEV_DATABASE),
    label: `${server.urlFor(DEV_DATABASE)} (local Postgres, started for this command)`,
    secrets: [],
    close: async () => {
      await stop();
      log('stopped the local Postgres');
    },
  };
}

const pad = (/** @type {number} */ v) => String(v).padStart(6, '0');

/**
 * @param {string[]} argv
 * @returns {Promise<number>} exit code
 */
export async function main(argv) {
  const usage = 'usage: node scripts/migrate.mjs up|down|status';
  const cmd = argv[0];
  if (argv.length !== 1 || (cmd !== 'up' && cmd !== 'down' && cmd !== 'status')) {
    console.error(argv.length ? `migrate: unknown command ${JSON.stringify(argv.join(' '))}\n${usage}` : usage);
    return 1;
  }
  const verbose = process.env.CHATD_VERBOSE === '1';
  const log = (/** @type {string} */ line) => console.log(line);

  /** @type {string[]} */
  let secrets = urlSecrets(process.env.DATABASE_URL ?? '');
  /** @type {Target | undefined} */
  let target;
  /** @type {pg.Client | undefined} */
  let client;
  try {
    // Check the files before touching any database.
    const migrations = await loadMigrations();
    target = await openTarget({ verbose, log });
    secrets = target.secrets;
    log(`database: ${target.label}`);
    client = new pg.Client({ connectionString: target.url, connectionTimeoutMillis: 10_000 });
    try {
      await client.connect();
    } catch (e) {
      throw new Error(`cannot connect to ${maskUrl(target.url)}: ${errorMessage(e, secrets)}`);
    }
    const latest = migrations.at(-1)?.version ?? 0;
    if (cmd === 'up') {
      const applied = await migrateUp(client, { migrations, log });
      log(applied.length ? `applied ${applied.length} migration(s); now at version ${latest}` : `nothing to apply; already at version ${latest}`);
    } else if (cmd === 'down') {
      const reverted = await migrateDown(client, { migrations, log });
      const now = (await appliedVersions(client)).at(-1) ?? 0;
      log(reverted === null ? 'nothing to revert: no migration is applied' : `now at version ${now}`);
    } else {
      const versions = await appliedVersions(client);
      const rows = await client.query('SELECT version, applied_at FROM schema_migrations');
      /** @type {Map<number, Date>} */
      const when = new Map(rows.rows.map((r) => [Number(r.version), /** @type {Date} */ (r.applied_at)]));
      const known = new Set(migrations.map((m) => m.version));
      for (const m of migrations) {
        const at = when.get(m.version);
        log(`${at ? 'applied' : 'pending'}  ${pad(m.version)}_${m.name}${at ? `  (${at.toISOString()})` : ''}`);
      }
      for (const v of versions) if (!known.has(v)) log(`applied  ${pad(v)}  (no file in sql/migrations!)`);
      const pending = migrations.filter((m) => !when.has(m.version)).length;
      log(`${versions.length} applied, ${pending} pending`);
    }
    return 0;
  } catch (e) {
    console.error(`migrate ${cmd} failed: ${errorMessage(e, secrets)}`);
    return 1;
  } finally {
    await client?.end().catch(() => undefined);
    await target?.close().catch((e) => console.error(`migrate: stopping Postgres: ${errorMessage(e)}`));
  }
}

const invokedDirectly = process.argv[1] !== undefined && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href;
if (invokedDirectly) {
  // process.exit: nothing left running (a pg client, a timer) can keep the command from ending.
  process.exit(await main(process.argv.slice(2)));
}
