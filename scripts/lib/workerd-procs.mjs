// @ts-check
/**
 * workerd's processes under a stack's root process, from the scale test's look at /proc (`sampleProcesses`): their
 * resident memory (scripts/memtest.mjs, scripts/bench-files.mjs) and CPU time (scripts/bench-fanout.mjs).
 */
import { CLK_TCK, sampleProcesses } from './scaletest-report.mjs';

/** The workerd processes under `root` (wrangler dev's proxy and the Worker's runtime alike). @param {number} root @param {boolean} rss */
function workerds(root, rss) {
  return [...(sampleProcesses({ rootPid: root, rss })?.procs.values() ?? [])].filter((p) => p.group === 'workerd');
}

/** The resident memory (kB) of every workerd process under `root`, largest first: the app's runtime is the largest. */
/** @param {number} root */
export function workerdRss(root) {
  return workerds(root, true)
    .map((p) => p.rssKb ?? 0)
    .sort((a, b) => b - a);
}

/** CPU seconds (user + system) of every workerd process under `root`, summed. @param {number} root */
export function workerdCpuSeconds(root) {
  return workerds(root, false).reduce((n, p) => n + p.ticks / CLK_TCK, 0);
}
