// @ts-check
/**
 * workerd's processes under a stack's root process, read from /proc (Linux): their resident memory (scripts/memtest.mjs,
 * scripts/bench-files.mjs) and CPU time (scripts/bench-fanout.mjs). Also the two small helpers those benches share.
 */
import { readdirSync, readFileSync } from 'node:fs';

const TICK = 100; // USER_HZ on Linux
const PAGE_KB = 4;

/**
 * Every workerd process under `root` (a parent chain of at most 50 links), with its resident memory and its CPU
 * seconds (user + system).
 * @param {number} root
 * @returns {{ pid: number, rssKb: number, cpu: number }[]}
 */
function workerdProcesses(root) {
  /** @type {Map<number, { ppid: number, comm: string, rssKb: number, cpu: number }>} */
  const all = new Map();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const raw = readFileSync(`/proc/${d}/stat`, 'utf8');
      const comm = raw.slice(raw.indexOf('(') + 1, raw.lastIndexOf(')'));
      // The fields after the name, from field 3 (state): ppid is 4, utime 14, stime 15, rss (pages) 24.
      const f = raw.slice(raw.lastIndexOf(')') + 2).split(' ');
      all.set(Number(d), { ppid: Number(f[1]), comm, cpu: (Number(f[11]) + Number(f[12])) / TICK, rssKb: Number(f[21]) * PAGE_KB });
    } catch {
      // gone
    }
  }
  const under = (/** @type {number} */ pid) => {
    for (let p = pid, i = 0; p > 1 && i < 50; i++) {
      if (p === root) return true;
      p = all.get(p)?.ppid ?? 0;
    }
    return false;
  };
  return [...all.entries()].filter(([pid, p]) => p.comm === 'workerd' && under(pid)).map(([pid, p]) => ({ pid, rssKb: p.rssKb, cpu: p.cpu }));
}

/** The resident memory (kB) of every workerd process under `root`, largest first: the app's runtime is the largest. */
/** @param {number} root */
export function workerdRss(root) {
  return workerdProcesses(root)
    .map((p) => p.rssKb)
    .sort((a, b) => b - a);
}

/** CPU seconds (user + system) of every workerd process under `root`, summed. @param {number} root */
export function workerdCpuSeconds(root) {
  return workerdProcesses(root).reduce((n, p) => n + p.cpu, 0);
}

/** The q-quantile of xs (nearest rank, from below); 0 for none. @param {number[]} xs @param {number} q */
export function quantile(xs, q) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? 0;
}

/** v as a record of unknowns ({} when it is not a plain object): for reading JSON answers. @param {unknown} v */
export function rec(v) {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? /** @type {Record<string, unknown>} */ (v) : {};
}
