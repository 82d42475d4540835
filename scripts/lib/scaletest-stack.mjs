// @ts-check
/**
 * The local stack for a scale-test run: `node scripts/dev.mjs` itself, spawned on free ports with a throwaway
 * Postgres data folder and Durable Object storage under .data/scaletest-<time>-<pid>/, no seed.
 *
 * Why spawn dev.mjs rather than start the pieces here: the run then measures exactly what `npm run dev` runs
 * (same proxy, mock, migrations, wrangler flags), dev.mjs already knows how to stop everything in order on
 * SIGINT, and the stack's CPU stays in processes of its own, apart from this client's, so the per-process CPU
 * account can tell them apart. Its output goes straight to a log file (never through this process: wrangler
 * logs one line per request); readiness is dev.mjs's ready line, printed once the migrations and the seed are done and
 * /healthz answers.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, openSync, closeSync, readFileSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { parseEnv } from 'node:util';
import { READY_LINE } from './dev-lifecycle.mjs';
import { DEV_DATABASE } from '../migrate.mjs';
import { dataLocation } from './pg-home.mjs';
import { localPgUrl } from './pg-server.mjs';
import { freePorts } from './ports.mjs';

/**
 * @typedef {object} LocalStack
 * @property {string} url          the Worker, e.g. http://127.0.0.1:41234
 * @property {string} pgUrl        the chatd database (superuser, trust auth)
 * @property {string} mockBaseUrl  the mock LLM's OpenAI base URL (…/v1)
 * @property {string} mockUrl      the mock LLM's root (for /__mock/*)
 * @property {number} pid          dev.mjs
 * @property {string} dir          the run's folder (data, Durable Object storage, stack.log)
 * @property {string} pgDataDir    its Postgres data folder (dir/postgres, or its place under /var/lib/chatd-edge/)
 * @property {string} logFile
 * @property {() => boolean} alive   dev.mjs is still running (it stops everything when wrangler dies)
 * @property {(opts?: { keep?: 'all' | 'log' | 'none' }) => Promise<ProxyCounts | null>} stop   SIGINT to dev.mjs, wait, then
 *   remove the folder (`none`, the default), everything but stack.log (`log`), or nothing (`all`); answers the Postgres
 *   proxy's counts from the line dev.mjs prints when it stops (null when it printed none)
 */

/**
 * @typedef {object} ProxyCounts
 * @property {number} clients          driver connections the proxy accepted (one per connect of a Worker or object)
 * @property {number} sessionsOpened   Postgres sessions it opened for them
 * @property {number} reused           connections served by a pooled session
 */

/**
 * The counts in dev.mjs's `[proxy] stopped (N clients, M Postgres sessions opened, K reused)` line.
 * @param {string} log
 * @returns {ProxyCounts | null}
 */
export function proxyCounts(log) {
  const m = /\[proxy\] stopped \((\d+) clients, (\d+) Postgres sessions opened, (\d+) reused\)/.exec(log);
  return m ? { clients: Number(m[1]), sessionsOpened: Number(m[2]), reused: Number(m[3]) } : null;
}

/**
 * @param {string} file
 * @param {number} n
 * @returns {string[]}
 */
export function lastLines(file, n) {
  try {
    return readFileSync(file, 'utf8').split('\n').filter((l) => l.trim()).slice(-n);
  } catch {
    return [];
  }
}

/** A stack that exited during start-up because a port chosen for it was taken before its server bound it. */
class PortTaken extends Error {
  /** @param {string} message @param {string} dir the attempt's folder (its log kept) */
  constructor(message, dir) {
    super(message);
    this.dir = dir;
  }
}

/** Start-ups tried, each on new ports, while a chosen port turns out taken. */
const PORT_ATTEMPTS = 3;

/**
 * @typedef {{ root: string, wranglerArgs?: string[], env?: Record<string, string>, databaseUrl?: string, log?: (line: string) => void, timeoutMs?: number }} StackOptions
 *   databaseUrl: a Postgres of the caller's on loopback instead of the embedded one
 */

/**
 * Starts the whole local stack (scripts/dev.mjs) on ports of its own. The ports are chosen here and bound by the stack's
 * servers seconds later (Postgres first, wrangler last): meanwhile another process may take one (another stack being
 * started by a parallel test file, an outgoing connection's local port). The stack then exits with "already in use",
 * and it is started again on new ports, at most PORT_ATTEMPTS times; any other failure is thrown at once.
 * @param {StackOptions} opts
 * @returns {Promise<LocalStack>}
 */
export async function startLocalStack(opts) {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce(opts);
    } catch (e) {
      if (!(e instanceof PortTaken) || attempt >= PORT_ATTEMPTS) throw e;
      await rm(e.dir, { recursive: true, force: true }).catch(() => undefined);
      (opts.log ?? (() => {}))(`a port chosen for the stack was taken before it bound it; starting it again on new ports (${e.message.split('\n')[0]})`);
    }
  }
}

/**
 * @param {StackOptions} opts
 * @returns {Promise<LocalStack>}
 */
async function startOnce({ root, wranglerArgs = [], env = {}, databaseUrl, log = () => {}, timeoutMs = 120_000 }) {
  const devVarsFile = path.join(root, '.dev.vars');
  if (existsSync(devVarsFile)) {
    const vars = parseEnv(readFileSync(devVarsFile, 'utf8'));
    for (const name of ['DATABASE_URL', 'PG_WS_PROXY']) {
      if (vars[name] !== undefined) {
        throw new Error(
          `.dev.vars sets ${name}, which would make the scale test's stack use another database than its own. ` +
            'Move .dev.vars aside, or start that stack yourself and pass --url (and --pg-url).',
        );
      }
    }
  }
  const [port, pgPort, proxyPort, mockPort, mcpPort, oidcPort, inspectorPort] = /** @type {[number, number, number, number, number, number, number]} */ (await freePorts(7));
  // wrangler dev's inspector takes 9229 unless told otherwise, and another stack on this machine may hold it.
  const inspector = wranglerArgs.includes('--inspector-port') ? [] : ['--inspector-port', String(inspectorPort)];
  const stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\..*$/, '');
  const dir = path.join(root, '.data', `scaletest-${stamp}-${process.pid}`);
  await mkdir(dir, { recursive: true });
  const logFile = path.join(dir, 'stack.log');
  // As root in a project the postgres user cannot reach, dev.mjs keeps this cluster under /var/lib/chatd-edge/.
  const pgData = await dataLocation(path.join(dir, 'postgres'), { root });
  const fd = openSync(logFile, 'a');
  /** @type {NodeJS.ProcessEnv} */
  const childEnv = {
    ...process.env,
    CHATD_PORT: String(port),
    CHATD_PG_PORT: String(pgPort),
    CHATD_PG_PROXY_PORT: String(proxyPort),
    CHATD_MOCK_LLM_PORT: String(mockPort),
    CHATD_MCP_PORT: String(mcpPort),
    CHATD_OIDC_PORT: String(oidcPort),
    CHATD_DATA_DIR: path.relative(root, path.join(dir, 'postgres')),
    CHATD_NO_SEED: '1',
    // The stack under test serves the API; the web UI is neither built nor watched.
    CHATD_WEB_BUILD: '0',
    CHATD_VERBOSE: '',
    // A key of its own, so the run neither needs nor touches .data/dev-secrets.json.
    PROVIDER_KEY_ENCRYPTION_KEY: randomBytes(32).toString('base64'),
    NO_COLOR: '1',
    ...env,
  };
  // The embedded server, unless the caller runs its own (the fault matrix stops and starts it).
  if (databaseUrl === undefined) delete childEnv.DATABASE_URL;
  else childEnv.DATABASE_URL = databaseUrl;
  const child = spawn(process.execPath, [path.join(root, 'scripts', 'dev.mjs'), '--persist-to', path.join(dir, 'wrangler'), ...inspector, ...wranglerArgs], {
    cwd: root,
    env: childEnv,
    stdio: ['ignore', fd, fd],
  });
  closeSync(fd);
  const pid = child.pid ?? 0;
  /** @type {{ code: number | null, signal: NodeJS.Signals | null } | null} */
  let exited = null;
  const exit = new Promise((resolve) => {
    child.once('exit', (code, signal) => {
      exited = { code, signal };
      resolve(undefined);
    });
  });
  log(`starting the stack (scripts/dev.mjs, pid ${pid}) in ${path.relative(root, dir)}: Worker :${port}, Postgres :${pgPort}, proxy :${proxyPort}, mock LLM :${mockPort}`);

  let stopped = false;
  /** @param {{ keep?: 'all' | 'log' | 'none' }} [o] */
  const stop = async ({ keep = 'none' } = {}) => {
    if (stopped) return null;
    stopped = true;
    if (!exited) {
      child.kill('SIGINT');
      const t = setTimeout(() => {
        if (!exited) child.kill('SIGTERM');
      }, 45_000);
      const k = setTimeout(() => {
        if (!exited) child.kill('SIGKILL');
      }, 60_000);
      await exit;
      clearTimeout(t);
      clearTimeout(k);
    }
    const counts = proxyCounts(lastLines(logFile, 20).join('\n'));
    if (keep === 'none') await rm(dir, { recursive: true, force: true }).catch(() => undefined);
    if (keep === 'log') {
      for (const sub of ['postgres', 'wrangler']) await rm(path.join(dir, sub), { recursive: true, force: true }).catch(() => undefined);
    }
    if (keep !== 'all' && pgData.relocated) await rm(path.dirname(pgData.dataDir), { recursive: true, force: true }).catch(() => undefined);
    return counts;
  };

  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + timeoutMs;
  try {
    for (;;) {
      if (exited) {
        const e = /** @type {{ code: number | null, signal: NodeJS.Signals | null }} */ (exited);
        const lines = lastLines(logFile, 25);
        const message = `the stack exited during start-up (${e.code !== null ? `code ${e.code}` : e.signal}); last lines of ${logFile}:\n  ${lines.join('\n  ')}`;
        // dev.mjs's own check ("port N is already in use"), Postgres's and wrangler's ("Address already in use").
        throw lines.some((l) => /already in use/i.test(l)) ? new PortTaken(message, dir) : new Error(message);
      }
      if (Date.now() > deadline) throw new Error(`the stack was not ready within ${timeoutMs / 1000} s; last lines of ${logFile}:\n  ${lastLines(logFile, 25).join('\n  ')}`);
      // dev.mjs's own line, printed once the migrations and the seed are done and the Worker answers /healthz (which it
      // may do before the migrations have run: wrangler starts beside Postgres).
      if (readFileSync(logFile, 'utf8').includes(READY_LINE)) break;
      await new Promise((res) => setTimeout(res, 250));
    }
  } catch (e) {
    await stop({ keep: 'log' });
    throw e;
  }
  return {
    url,
    pgUrl: databaseUrl ?? localPgUrl(pgPort, DEV_DATABASE),
    mockBaseUrl: `http://127.0.0.1:${mockPort}/v1`,
    mockUrl: `http://127.0.0.1:${mockPort}`,
    pid,
    dir,
    pgDataDir: pgData.dataDir,
    logFile,
    alive: () => exited === null,
    stop,
  };
}
