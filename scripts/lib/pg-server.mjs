// @ts-check
/**
 * Runs the embedded Postgres binaries: initdb for a new cluster, then the server, as the given user. Every failure
 * to start (the binaries cannot be run, the port is taken, the data folder is in use, locked, not the server's, the
 * disk is full) rejects with a PgStartError naming the cause and the fix, and leaves no process behind. No child
 * process here can emit an unhandled 'error' event.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { PgStartError } from './pg-home.mjs';

const READY = 'database system is ready to accept connections';

/**
 * The URL of database `name` on a local server started here (scripts/lib/local-pg.mjs), on `port`: known before
 * the server runs (`npm run dev` hands it to wrangler while Postgres starts).
 * @param {number} port
 * @param {string} name
 */
export function localPgUrl(port, name) {
  return `postgres://postgres@127.0.0.1:${port}/${name}`;
}

/** @typedef {import('./pg-home.mjs').ServerUser} ServerUser */

/** @type {Set<Proc>} every initdb and server this process started that has not exited yet */
const live = new Set();

/** Stops every initdb and server of this process that still runs (a signal arrived); resolves once they are gone. */
export async function stopAll() {
  await Promise.allSettled([...live].map((p) => terminate(p)));
}

/** On exit, when only synchronous work is possible: asks each one still running to stop (Postgres then shuts down by itself). */
export function signalAll() {
  for (const p of live) p.child?.kill('SIGINT');
}
/** @typedef {{ code: number | null, signal: NodeJS.Signals | null, error: NodeJS.ErrnoException | null }} Exit */

/**
 * @typedef {object} Proc
 * @property {string} file
 * @property {import('node:child_process').ChildProcess | null} child  null when spawn threw
 * @property {Promise<Exit>} exited   the process is gone (or never started)
 * @property {Promise<void>} closed   and its output is all read
 * @property {string[]} lines         the last lines of its output
 */

/**
 * @param {string} file
 * @param {string[]} args
 * @param {{ user: ServerUser | null, cwd: string, log: (line: string) => void, onLine?: (line: string) => void }} opts
 * @returns {Proc}
 */
function launch(file, args, { user, cwd, log, onLine }) {
  /** @type {string[]} */
  const lines = [];
  /** @param {Buffer} chunk */
  const take = (chunk) => {
    const text = chunk.toString('utf8');
    log(text.trimEnd());
    for (const line of text.split(/\r?\n/)) {
      if (!line.trim()) continue;
      lines.push(line);
      if (lines.length > 60) lines.shift();
      onLine?.(line);
    }
  };
  /** @type {import('node:child_process').ChildProcess | null} */
  let child = null;
  try {
    child = spawn(file, args, {
      cwd,
      // English messages: start-up is recognised by its log line, failures by theirs.
      env: { ...process.env, LC_MESSAGES: 'C' },
      stdio: ['ignore', 'pipe', 'pipe'],
      ...(user ? { uid: user.uid, gid: user.gid } : {}),
    });
  } catch (e) {
    const error = /** @type {NodeJS.ErrnoException} */ (e);
    return { file, child: null, exited: Promise.resolve({ code: null, signal: null, error }), closed: Promise.resolve(), lines };
  }
  const c = child;
  /** @type {Proc} */
  const proc = { file, child: c, exited: Promise.resolve({ code: null, signal: null, error: null }), closed: Promise.resolve(), lines };
  live.add(proc);
  c.stdout?.on('data', take);
  c.stderr?.on('data', take);
  proc.exited = new Promise((resolve) => {
    c.once('error', (error) => {
      live.delete(proc);
      resolve({ code: null, signal: null, error });
    });
    c.once('exit', (code, signal) => {
      live.delete(proc);
      resolve({ code, signal, error: null });
    });
  });
  proc.closed = new Promise((resolve) => c.once('close', () => resolve()));
  return proc;
}

/**
 * @template T
 * @param {Promise<T>} p
 * @param {number} ms
 * @returns {Promise<T | 'timeout'>}
 */
async function within(p, ms) {
  /** @type {NodeJS.Timeout | undefined} */
  let timer;
  try {
    return await Promise.race([p, new Promise((resolve) => (timer = setTimeout(resolve, ms, 'timeout')))]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Stops a server: SIGINT (fast shutdown), then SIGQUIT (immediate), then SIGKILL, each after a grace period.
 * Resolves once the process is gone; at once when it is gone already.
 * @param {Proc} p
 * @param {number} [graceMs]
 */
async function terminate(p, graceMs = 20_000) {
  const { child } = p;
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  for (const sig of /** @type {const} */ (['SIGINT', 'SIGQUIT', 'SIGKILL'])) {
    child.kill(sig);
    if ((await within(p.exited, sig === 'SIGKILL' ? 60_000 : graceMs)) !== 'timeout') return;
  }
}

/** @param {number} pid @returns {string[] | null} its command line, null when unknown */
function cmdline(pid) {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
  } catch {
    return null;
  }
}

/**
 * The message for a failed start: what went wrong and what to do about it.
 * @param {{ stage: 'initdb' | 'postgres', p: Proc, exit: Exit | 'timeout', dataDir: string, port: number, user: ServerUser | null }} f
 * @returns {string}
 */
export function explainFailure({ stage, p, exit, dataDir, port, user }) {
  const head = `Postgres did not start on 127.0.0.1:${port} with data in ${dataDir}: `;
  const as = user ? ` as the ${user.name} user` : '';
  if (exit !== 'timeout' && exit.error) {
    const code = exit.error.code ?? String(exit.error);
    if (code === 'EACCES' || code === 'EPERM') {
      return (
        `${head}${p.file} cannot be run${as}: permission denied (${code}). Reinstall the binaries (\`rm -rf node_modules && npm ci\`) ` +
        `or make them executable (\`chmod a+x ${path.dirname(p.file)}/*\`); if they are, the file system holding them may be mounted noexec.`
      );
    }
    if (code === 'ENOENT') return `${head}${p.file} is missing: reinstall the binaries with \`npm ci\`.`;
    return `${head}cannot run ${p.file}${as}: ${exit.error.message}`;
  }
  const all = p.lines.join('\n');
  /** @param {RegExp} re */
  const said = (re) => {
    const line = p.lines.find((l) => re.test(l));
    return line ? ` (Postgres said: ${line.replace(/^.*?(FATAL|ERROR|PANIC|LOG):\s*/, '$1: ').trim()})` : '';
  };
  if (/Address already in use/.test(all)) {
    return `${head}port ${port} is already in use, so Postgres cannot listen there. Stop what holds it or set CHATD_PG_PORT to another port.`;
  }
  const lock = /lock file "([^"]+)" already exists/.exec(all);
  if (lock?.[1]) {
    const file = path.resolve(dataDir, lock[1]);
    const pid = Number(/\(PID (\d+)\)/.exec(all)?.[1] ?? 0);
    const cmd = pid ? cmdline(pid) : null;
    if (pid && cmd?.some((a) => /postgres/.test(a)) && cmd.includes(dataDir)) {
      return (
        `${head}another Postgres (pid ${pid}) already runs on this data folder (another \`npm run dev\`, \`npm run migrate\` or test run?). ` +
        `Stop it (kill -INT ${pid}) or use another data folder (CHATD_DATA_DIR).`
      );
    }
    return (
      `${head}the lock file ${file} is stale: it names pid ${pid || '?'}, which is not a Postgres using it (left by a crash or a reboot, the pid since reused). ` +
      `If no Postgres runs on ${dataDir}, delete ${file} and try again.`
    );
  }
  if (/No space left on device/.test(all)) {
    return `${head}the disk is full${said(/No space left on device/)}. Free some space on the disk holding ${dataDir} (or /dev/shm when it is shared memory) and try again.`;
  }
  if (/exists but is not empty/.test(all)) {
    return `${head}${dataDir} exists but holds no Postgres cluster (no PG_VERSION). Move it away, or use another data folder (CHATD_DATA_DIR).`;
  }
  if (/database files are incompatible with server/.test(all)) {
    return `${head}the cluster was made by another Postgres major version${said(/incompatible/)}. Move ${dataDir} away to start a fresh cluster (dump it first with its own version if you need its data).`;
  }
  const owner = user ? `chown -R ${user.name}: ${dataDir}; chmod 700 ${dataDir}` : `chmod 700 ${dataDir}`;
  if (/wrong ownership|invalid permissions|must be owned by/.test(all)) {
    return `${head}the data folder's owner or mode is wrong${said(/wrong ownership|invalid permissions|must be owned by/)}. Fix it with \`${owner}\`, or use another data folder (CHATD_DATA_DIR).`;
  }
  if (/Permission denied/.test(all)) {
    return (
      `${head}${stage}${as} was denied access${said(/Permission denied/)}. The server's user must own the data folder and be able to enter every folder above it: ` +
      `\`${owner}\`, or use another data folder (CHATD_DATA_DIR).`
    );
  }
  const tail = p.lines.slice(-8);
  const how = exit === 'timeout' ? 'did not report ready in time' : `exited during start-up (${exit.code !== null ? `code ${exit.code}` : `signal ${exit.signal ?? '?'}`})`;
  return `${head}${stage} ${how}.${tail.length ? ` Its last lines:\n  ${tail.join('\n  ')}` : ''}\nRun again with CHATD_VERBOSE=1 to see its whole log.`;
}

/**
 * Creates a cluster in `dataDir` (which exists, owned by the server's user).
 * @param {{ bin: string, dataDir: string, port: number, user: ServerUser | null, flags?: string[], log?: (line: string) => void }} o
 */
export async function initCluster({ bin, dataDir, port, user, flags = [], log = () => {} }) {
  const p = launch(
    path.join(bin, 'bin', 'initdb'),
    [`--pgdata=${dataDir}`, '--auth=trust', '--username=postgres', '--lc-messages=C', ...flags],
    { user, cwd: path.dirname(dataDir), log },
  );
  const exit = await p.exited;
  await within(p.closed, 5_000);
  if (exit.error || exit.code !== 0) throw new PgStartError(explainFailure({ stage: 'initdb', p, exit, dataDir, port, user }));
}

/**
 * @typedef {object} RunningServer
 * @property {number} pid
 * @property {Promise<Exit>} exited
 * @property {() => Promise<void>} stop   resolves once the server is gone
 */

/**
 * Starts the server and resolves once it accepts connections.
 * @param {{ bin: string, dataDir: string, port: number, user: ServerUser | null, flags?: string[], log?: (line: string) => void, timeoutMs?: number }} o
 * @returns {Promise<RunningServer>}
 */
export async function startServer({ bin, dataDir, port, user, flags = [], log = () => {}, timeoutMs = 60_000 }) {
  /** @type {() => void} */
  let onReady = () => {};
  /** @type {Promise<'ready'>} */
  const ready = new Promise((resolve) => (onReady = () => resolve('ready')));
  const p = launch(path.join(bin, 'bin', 'postgres'), ['-D', dataDir, '-p', String(port), ...flags], {
    user,
    cwd: path.dirname(dataDir),
    log,
    onLine: (line) => {
      if (line.includes(READY)) onReady();
    },
  });
  const outcome = await within(Promise.race([ready, p.exited]), timeoutMs);
  if (outcome !== 'ready') {
    await terminate(p, 5_000);
    await within(p.closed, 5_000);
    throw new PgStartError(explainFailure({ stage: 'postgres', p, exit: outcome, dataDir, port, user }));
  }
  const child = /** @type {import('node:child_process').ChildProcess} */ (p.child);
  return { pid: child.pid ?? 0, exited: p.exited, stop: () => terminate(p) };
}
