// @ts-check
/**
 * Reporting helpers shared by `npm run scaletest` and `npm run bench`: percentiles, plain-text tables, machine
 * and git facts for the results JSON, a progress line on stderr, and a per-process CPU account from /proc.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

/**
 * @typedef {object} Summary
 * @property {number} n
 * @property {number | null} mean
 * @property {number | null} p50
 * @property {number | null} p95
 * @property {number | null} p99
 * @property {number | null} max
 */

/**
 * Nearest-rank percentiles of a sample (milliseconds, rounded to 0.001).
 * @param {readonly number[]} values
 * @returns {Summary}
 */
export function summarize(values) {
  const n = values.length;
  if (n === 0) return { n, mean: null, p50: null, p95: null, p99: null, max: null };
  const sorted = Float64Array.from(values).sort();
  const at = (/** @type {number} */ q) => round3(sorted[Math.min(n - 1, Math.max(0, Math.ceil(q * n) - 1))] ?? 0);
  let sum = 0;
  for (const v of sorted) sum += v;
  return { n, mean: round3(sum / n), p50: at(0.5), p95: at(0.95), p99: at(0.99), max: round3(sorted[n - 1] ?? 0) };
}

/**
 * The value at rank floor(q·n) of a sample, 0 for none: what the benches of single operations print (`summarize` is
 * the scale test's nearest rank). @param {readonly number[]} xs @param {number} q
 */
export function quantile(xs, q) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? 0;
}

/** @param {number} v */
export const round2 = (v) => Math.round(v * 100) / 100;

/** @param {number} v */
export const round3 = (v) => Math.round(v * 1000) / 1000;

/**
 * @param {number | null | undefined} v
 * @param {number} [digits]
 * @returns {string}
 */
export function fmt(v, digits = 2) {
  if (v === null || v === undefined || Number.isNaN(v)) return 'n/a';
  if (Number.isInteger(v) && digits <= 2) return v.toLocaleString('en-US');
  return v.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

/**
 * A plain-text table; numbers-looking cells are right-aligned.
 * @param {string[]} header
 * @param {string[][]} rows
 * @returns {string}
 */
export function table(header, rows) {
  const all = [header, ...rows];
  const widths = header.map((_, i) => Math.max(...all.map((r) => (r[i] ?? '').length)));
  const numeric = (/** @type {string} */ s) => /^[-+]?[\d,.]+(\s?(ms|s|%|x))?$|^n\/a$/.test(s);
  const line = (/** @type {string[]} */ r) =>
    r.map((c, i) => (i > 0 && numeric(c) ? c.padStart(widths[i] ?? 0) : c.padEnd(widths[i] ?? 0))).join('  ').trimEnd();
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

/** Facts about the machine, for the results file. */
export function machineInfo() {
  const cpus = os.cpus();
  return {
    hostname: os.hostname(),
    platform: `${os.platform()} ${os.release()}`,
    arch: os.arch(),
    cpus: cpus.length,
    cpuModel: cpus[0]?.model ?? 'unknown',
    cpuMHz: cpus[0]?.speed ?? 0,
    totalMemGiB: round2(os.totalmem() / 2 ** 30),
    node: process.version,
    loadavgAtStart: os.loadavg().map(round2),
  };
}

/**
 * The commit the working tree is at, and whether it has uncommitted changes.
 * @param {string} root
 * @returns {{ commit: string | null, dirty: boolean | null, changed: string[] }}
 */
export function gitInfo(root) {
  try {
    const commit = execFileSync('git', ['rev-parse', 'HEAD'], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    const status = execFileSync('git', ['status', '--porcelain'], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    const changed = status.split('\n').filter((l) => l.trim()).map((l) => l.slice(3));
    return { commit, dirty: changed.length > 0, changed };
  } catch {
    return { commit: null, dirty: null, changed: [] };
  }
}

/**
 * Version of an installed package, or null.
 * @param {string} root
 * @param {string} name
 * @returns {string | null}
 */
export function packageVersion(root, name) {
  try {
    /** @type {unknown} */
    const pkg = JSON.parse(readFileSync(path.join(root, 'node_modules', name, 'package.json'), 'utf8'));
    return typeof pkg === 'object' && pkg !== null && 'version' in pkg && typeof pkg.version === 'string' ? pkg.version : null;
  } catch {
    return null;
  }
}

/**
 * Writes a results file `<dir>/<prefix>-<timestamp>.json` and returns its path.
 * @param {string} dir
 * @param {string} prefix
 * @param {unknown} data
 * @param {{ pretty?: boolean }} [opts]
 * @returns {Promise<string>}
 */
export async function writeResults(dir, prefix, data, { pretty = true } = {}) {
  await mkdir(dir, { recursive: true });
  const stamp = new Date().toISOString().replace(/[:]/g, '').replace(/\..*$/, 'Z');
  const file = path.join(dir, `${prefix}-${stamp}.json`);
  await writeFile(file, `${JSON.stringify(data, null, pretty ? 2 : undefined)}\n`);
  return file;
}

/**
 * Progress on stderr: a bar redrawn in place on a terminal, otherwise one line every few seconds.
 * @param {{ total: number, label: string, intervalMs?: number, stream?: NodeJS.WriteStream }} opts
 */
export function progress({ total, label, intervalMs = 5000, stream = process.stderr }) {
  const tty = stream.isTTY;
  const started = performance.now();
  let lastLine = 0;
  let drawn = false;
  /** @param {number} done @param {string} extra */
  const render = (done, extra) => {
    const secs = (performance.now() - started) / 1000;
    const rate = secs > 0 ? done / secs : 0;
    const eta = rate > 0 && done < total ? `${Math.ceil((total - done) / rate)}s` : '-';
    const pct = total > 0 ? Math.floor((done / total) * 100) : 100;
    const width = 30;
    const fill = total > 0 ? Math.round((done / total) * width) : width;
    const bar = `[${'#'.repeat(fill)}${'.'.repeat(width - fill)}]`;
    return `${label} ${bar} ${pct}% ${done}/${total}  ${rate.toFixed(1)}/s  ${secs.toFixed(0)}s elapsed  eta ${eta}${extra ? `  ${extra}` : ''}`;
  };
  return {
    /** @param {number} done @param {string} [extra] */
    update(done, extra = '') {
      const now = performance.now();
      if (tty) {
        if (now - lastLine < 100 && done < total) return;
        lastLine = now;
        const cols = stream.columns || 120;
        stream.write(`\r${render(done, extra).slice(0, cols - 1).padEnd(cols - 1)}`);
        drawn = true;
      } else if (now - lastLine >= intervalMs) {
        lastLine = now;
        stream.write(`${render(done, extra)}\n`);
      }
    },
    /** @param {number} done @param {string} [extra] */
    finish(done, extra = '') {
      if (tty) {
        const cols = stream.columns || 120;
        stream.write(`\r${render(done, extra).slice(0, cols - 1).padEnd(cols - 1)}\n`);
      } else {
        stream.write(`${render(done, extra)}\n`);
      }
      drawn = false;
    },
    /** Clears the bar before another line is printed on a terminal. */
    clear() {
      if (tty && drawn) stream.write(`\r${' '.repeat((stream.columns || 120) - 1)}\r`);
    },
  };
}

// ---------------------------------------------------------------------------------------------------------------
// CPU by process group, from /proc (Linux). Exited children are counted through their parent's cutime/cstime
// (Postgres reaps its backends, so the postmaster accounts for the connections that closed during the run).

/**
 * @typedef {object} ProcSample
 * @property {number} at                  performance.now() when taken
 * @property {Map<number, { group: string, ticks: number, childTicks: number, fds: number | null, rssKb: number | null }>} procs
 * @property {{ busy: number, total: number } | null} machine   jiffies from /proc/stat
 */

export const CLK_TCK = 100; // USER_HZ on Linux, for every architecture Node runs on
export const OTHER = 'other processes (not the stack)';
/** wrangler dev runs two workerd: its proxy (public port, ProxyWorker + InspectorProxyWorker) and the Worker. */
export const WORKERD_APP = 'workerd (Worker + Durable Objects)';
export const WORKERD_DEV = 'workerd (wrangler dev proxy + inspector)';

/**
 * Puts a process in a group by its command line.
 * @param {string} comm
 * @param {string} cmdline
 * @param {number | null} publicPort  the Worker's public port (wrangler dev's proxy listens there)
 * @returns {string}
 */
function groupOf(comm, cmdline, publicPort) {
  if (comm === 'workerd') {
    if (publicPort === null) return 'workerd';
    return cmdline.includes(`entry=127.0.0.1:${publicPort} `) || cmdline.endsWith(`entry=127.0.0.1:${publicPort}`) ? WORKERD_DEV : WORKERD_APP;
  }
  if (comm === 'postgres' || cmdline.startsWith('postgres:') || /\/bin\/postgres\b/.test(cmdline)) return 'postgres';
  if (/scripts\/dev\.mjs/.test(cmdline)) return 'dev.mjs (pg proxy + mock LLM)';
  if (/wrangler/.test(cmdline)) return 'wrangler (node)';
  return comm;
}

/** `read()`, or null when it throws (a process that exited while we looked). @param {() => number} read */
function orNull(read) {
  try {
    return read();
  } catch {
    return null;
  }
}

/**
 * One look at every process: CPU ticks, and (with `fds`) open file descriptors, (with `rss`) resident memory.
 * @param {{ rootPid?: number | null, publicPort?: number | null, fds?: boolean, rss?: boolean }} [opts]  rootPid: the stack's top
 *   process; only it and its descendants get their own groups, everything else is OTHER (other jobs on the machine
 *   run workerd and Postgres too). Without it, processes are grouped by name wherever they come from.
 * @returns {ProcSample | null} null when /proc is not there
 */
export function sampleProcesses({ rootPid = null, publicPort = null, fds = false, rss = false } = {}) {
  if (!existsSync('/proc/stat')) return null;
  /** @type {Map<number, { ppid: number, comm: string, cmdline: string, ticks: number, childTicks: number }>} */
  const raw = new Map();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      const close = stat.lastIndexOf(')');
      const comm = stat.slice(stat.indexOf('(') + 1, close);
      // After the command: state ppid ... utime(14) stime(15) cutime(16) cstime(17), numbered as in proc(5).
      const f = stat.slice(close + 2).split(' ');
      let cmdline = '';
      try {
        cmdline = readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0').join(' ');
      } catch {
        // gone
      }
      raw.set(Number(d), { ppid: Number(f[1]), comm, cmdline, ticks: Number(f[11]) + Number(f[12]), childTicks: Number(f[13]) + Number(f[14]) });
    } catch {
      // exited while we looked
    }
  }
  /** @param {number} pid */
  const inStack = (pid) => {
    if (rootPid === null) return true;
    for (let p = pid, hops = 0; p > 1 && hops < 64; hops++) {
      if (p === rootPid) return true;
      p = raw.get(p)?.ppid ?? 0;
    }
    return false;
  };
  /** @type {ProcSample['procs']} */
  const procs = new Map();
  for (const [pid, r] of raw) {
    const group = pid === process.pid ? 'scaletest client (this process)' : inStack(pid) ? groupOf(r.comm, r.cmdline, publicPort) : OTHER;
    // Read only for the stack's processes; null when the process exited meanwhile.
    const mine = group !== OTHER;
    const n = fds && mine ? orNull(() => readdirSync(`/proc/${pid}/fd`).length) : null;
    const rssKb = rss && mine ? orNull(() => Number(/^VmRSS:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0)) : null;
    procs.set(pid, { group, ticks: r.ticks, childTicks: r.childTicks, fds: n, rssKb });
  }
  let machine = null;
  try {
    const cpu = (readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '').trim().split(/\s+/).slice(1).map(Number);
    const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = cpu;
    machine = { busy: user + nice + system + irq + softirq + steal, total: user + nice + system + idle + iowait + irq + softirq + steal };
  } catch {
    machine = null;
  }
  return { at: performance.now(), procs, machine };
}

/**
 * Open file descriptors per group (the stack's processes and this one).
 * @param {ProcSample | null} s
 * @returns {Record<string, number>}
 */
export function fdsByGroup(s) {
  /** @type {Record<string, number>} */
  const out = {};
  for (const p of s?.procs.values() ?? []) if (p.fds !== null) out[p.group] = (out[p.group] ?? 0) + p.fds;
  return out;
}

/**
 * CPU seconds per group between two samples, and the average number of cores each kept busy.
 * @param {ProcSample | null} a
 * @param {ProcSample | null} b
 * @returns {{ wallSeconds: number, machineBusyPct: number | null, groups: { group: string, cpuSeconds: number, cores: number, pctOfBusy: number }[] } | null}
 */
export function cpuByGroup(a, b) {
  if (!a || !b) return null;
  const wall = (b.at - a.at) / 1000;
  /** @type {Map<string, number>} */
  const ticks = new Map();
  const add = (/** @type {string} */ g, /** @type {number} */ t) => ticks.set(g, (ticks.get(g) ?? 0) + t);
  for (const [pid, end] of b.procs) {
    const start = a.procs.get(pid);
    // Own time, plus, for the stack's processes, time of children that exited and were reaped (Postgres
    // backends of closed connections). Not for the rest: init and shells reap unrelated jobs' processes.
    const reaped = end.group === OTHER ? 0 : end.childTicks - (start?.childTicks ?? 0);
    add(end.group, end.ticks - (start?.ticks ?? 0) + reaped);
  }
  let total = 0;
  for (const t of ticks.values()) total += Math.max(0, t);
  const groups = [...ticks.entries()]
    .filter(([, t]) => t > 0)
    .map(([group, t]) => ({ group, cpuSeconds: round2(t / CLK_TCK), cores: round2(t / CLK_TCK / Math.max(wall, 0.001)), pctOfBusy: round2((t / Math.max(total, 1)) * 100) }))
    .sort((x, y) => y.cpuSeconds - x.cpuSeconds);
  const machineBusyPct =
    a.machine && b.machine && b.machine.total > a.machine.total
      ? round2(((b.machine.busy - a.machine.busy) / (b.machine.total - a.machine.total)) * 100)
      : null;
  return { wallSeconds: round2(wall), machineBusyPct, groups };
}

/** Kernel TCP counters that show connection storms: accept queues that overflowed, SYNs that timed out. */
const TCP_COUNTERS = /** @type {const} */ (['ListenOverflows', 'ListenDrops', 'TCPTimeouts', 'SyncookiesSent']);

/** @returns {Record<string, number> | null} machine-wide TcpExt counters from /proc/net/netstat, or null */
export function sampleTcp() {
  try {
    const lines = readFileSync('/proc/net/netstat', 'utf8').split('\n');
    const i = lines.findIndex((l) => l.startsWith('TcpExt:'));
    const names = (lines[i] ?? '').split(/\s+/);
    const values = (lines[i + 1] ?? '').split(/\s+/);
    /** @type {Record<string, number>} */
    const out = {};
    for (const k of TCP_COUNTERS) {
      const j = names.indexOf(k);
      if (j > 0) out[k] = Number(values[j]);
    }
    return out;
  } catch {
    return null;
  }
}

/**
 * @param {Record<string, number> | null} a
 * @param {Record<string, number> | null} b
 * @returns {Record<string, number> | null}
 */
export function tcpDelta(a, b) {
  if (!a || !b) return null;
  /** @type {Record<string, number>} */
  const out = {};
  for (const [k, v] of Object.entries(b)) out[k] = v - (a[k] ?? 0);
  return out;
}

/**
 * Times one statement: warm-up, then `runs` round trips; and one EXPLAIN ANALYZE for the server's own time.
 * @param {{ query: (sql: string, params: unknown[]) => Promise<{ rowCount: number | null, rows: Record<string, unknown>[] }> }} db
 * @param {string} sql
 * @param {unknown[]} params
 * @param {number} runs
 */
export async function timeQuery(db, sql, params, runs) {
  for (let i = 0; i < 3; i++) await db.query(sql, params);
  /** @type {number[]} */
  const ms = [];
  let rows = 0;
  for (let i = 0; i < runs; i++) {
    const t = performance.now();
    const r = await db.query(sql, params);
    ms.push(performance.now() - t);
    rows = r.rowCount ?? 0;
  }
  const plan = await db.query(`EXPLAIN (ANALYZE, FORMAT JSON) ${sql}`, params);
  /** @type {unknown} */
  const json = plan.rows[0]?.['QUERY PLAN'];
  const top = Array.isArray(json) && json[0] && typeof json[0] === 'object' ? json[0] : {};
  return { rows, latencyMs: summarize(ms), serverMs: round2(Number(top['Execution Time'] ?? NaN)) };
}
