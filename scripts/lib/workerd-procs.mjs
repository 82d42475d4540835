// @ts-check
/** workerd's resident memory, for scripts/memtest.mjs and scripts/bench-files.mjs. */
import { readdirSync, readFileSync } from 'node:fs';

/** The resident memory (kB) of every workerd process under `root`, largest first: the app's runtime is the largest. */
/** @param {number} root */
export function workerdRss(root) {
  /** @type {Map<number, { ppid: number, comm: string, rssKb: number }>} */
  const all = new Map();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const status = readFileSync(`/proc/${d}/status`, 'utf8');
      const field = (/** @type {string} */ k) => new RegExp(`^${k}:\\s+(\\S+)`, 'm').exec(status)?.[1] ?? '';
      all.set(Number(d), { ppid: Number(field('PPid')), comm: field('Name'), rssKb: Number(field('VmRSS') || 0) });
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
  return [...all.entries()].filter(([pid, p]) => p.comm === 'workerd' && under(pid)).map(([, p]) => p.rssKb).sort((a, b) => b - a);
}

