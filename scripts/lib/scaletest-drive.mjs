// @ts-check
/**
 * The scale test's workload: every chat's turns under the concurrency bound (all chats at once, or --rolling), with
 * the progress line, a watchdog for a stack that dies mid-run, and what is measured while the turns run (CPU by
 * process group, TCP counters, the timeline, the Worker's CPU profile).
 */
import path from 'node:path';
import { Semaphore, mapLimit } from './scaletest-client.mjs';
import { ChatRun } from './scaletest-chat-run.mjs';
import { devBundle, summarizeProfile } from './scaletest-inspector.mjs';
import { cpuByGroup, progress, sampleProcesses, sampleTcp, tcpDelta, writeResults } from './scaletest-report.mjs';
import { loadGeneratedStatements, statementNames } from './scaletest-sql.mjs';
import { startTimeline } from './scaletest-timeline.mjs';

/**
 * @typedef {object} Drive
 * @property {import('./scaletest-options.mjs').Options} o
 * @property {import('./scaletest-chat-run.mjs').Shared} shared   the API and the error counter every ChatRun uses
 * @property {string} modelId
 * @property {ChatRun[]} runs        filled as chats start (the caller closes them)
 * @property {import('./scaletest-stack.mjs').LocalStack | null} stack   the own stack, or null with --url
 * @property {Map<string, number>} errors
 * @property {(key: string) => void} countError
 * @property {(line: string) => void} log
 * @property {string} root
 */

/**
 * Runs every chat's turns; each turn holds a slot of the semaphore.
 * @param {Drive} d
 * @param {Semaphore} sem
 * @param {{ done: number, failed: number }} count  turns ended in `waiting`, and failed, updated as they end
 */
async function driveChats({ o, shared, modelId, runs, stack, countError, log, root }, sem, count) {
  const { chats, turns } = o;
  const text = (/** @type {number} */ chat, /** @type {number} */ turn) => `${o.prompt} (chat ${chat + 1}, turn ${turn}) ${o.directive}`;
  const runChat = async (/** @type {number} */ i) => {
    const run = new ChatRun(i, shared);
    runs.push(run);
    for (let turn = 1; turn <= turns; turn++) {
      const release = await sem.acquire();
      let timing;
      try {
        timing = turn === 1 ? await run.create(text(i, turn), modelId) : await run.send(turn, text(i, turn));
      } finally {
        release();
      }
      if (!timing) {
        // The chat cannot go on (no chat, no stream, a refused POST, or a turn that never ended).
        run.abandoned = true;
        run.turnsFailed += turns - turn + 1;
        count.failed += turns - turn + 1;
        break;
      }
      if (timing.ok) run.turnsOk += 1;
      else run.turnsFailed += 1;
      if (timing.ok) count.done += 1;
      else count.failed += 1;
    }
    return run;
  };
  // When the own stack dies mid-run (wrangler crashed), fail the turns in flight now instead of after their timeout.
  const watchdog = setInterval(() => {
    if (!stack || stack.alive()) return;
    clearInterval(watchdog);
    countError(`the stack stopped during the run (see ${path.relative(root, stack.logFile)})`);
    log(`the stack stopped during the run; failing the turns in flight (log: ${path.relative(root, stack.logFile)})`);
    for (const r of runs) r.abortTurn();
  }, 1000);
  if (o.rolling) {
    // C chats at a time, each from its first turn to its last; its stream closes after it, so at most C are open.
    await mapLimit(
      Array.from({ length: chats }, (_, i) => i),
      o.concurrency,
      async (i) => {
        const run = await runChat(i);
        await run.closeGracefully();
      },
    );
  } else {
    await Promise.all(Array.from({ length: chats }, (_, i) => runChat(i)));
  }
  clearInterval(watchdog);
}

/**
 * Runs the turns and measures the run.
 * @param {Drive} d
 * @param {{ db: import('./scaletest-sql.mjs').PgLike | null, inspector: import('./scaletest-inspector.mjs').Inspector | null }} tools
 *   db: the Postgres counters connection (for the timeline); inspector: the Worker's, for --cpu-profile
 */
export async function runTurns(d, { db, inspector }) {
  const { o, stack, errors } = d;
  const sem = new Semaphore(o.concurrency);
  const count = { done: 0, failed: 0 };
  const errorCount = () => [...errors.values()].reduce((x, y) => x + y, 0);
  const bar = progress({ total: o.chats * o.turns, label: 'turns' });
  const ticker = setInterval(() => {
    bar.update(count.done + count.failed, `mid-turn ${sem.held}  failed ${count.failed}  errors ${errorCount()}`);
  }, 250);
  if (o.cpuProfile && inspector) await inspector.send('Profiler.start');
  const rootPid = stack?.pid ?? null;
  const publicPort = stack ? Number(new URL(stack.url).port) : null;
  const cpuStart = sampleProcesses({ rootPid, publicPort });
  const tcpStart = sampleTcp();
  const clientCpuStart = process.cpuUsage();
  const t0 = performance.now();
  const timeline = startTimeline({
    db,
    names: statementNames(loadGeneratedStatements(d.root)),
    rootPid,
    publicPort,
    sampleMs: o.sampleMs,
    t0,
    first: cpuStart,
    turns: () => ({ done: count.done, failed: count.failed, midTurn: sem.held, errors: errorCount() }),
  });
  await driveChats(d, sem, count);
  const wallMs = performance.now() - t0;
  const clientCpu = process.cpuUsage(clientCpuStart);
  timeline.stop();
  const cpuEnd = sampleProcesses({ rootPid, publicPort });
  const tcp = tcpDelta(tcpStart, sampleTcp());
  clearInterval(ticker);
  bar.finish(count.done + count.failed, `failed ${count.failed}`);
  const cpu = cpuByGroup(cpuStart, cpuEnd);
  /** @type {{ file: string, summary: ReturnType<typeof summarizeProfile> } | null} */
  let profile = null;
  if (o.cpuProfile && inspector) {
    const r = await inspector.send('Profiler.stop');
    const p = /** @type {Parameters<typeof summarizeProfile>[0]} */ (/** @type {unknown} */ (r.profile));
    const file = await writeResults(o.outDir, 'scaletest-cpuprofile', p, { pretty: false });
    profile = { file, summary: summarizeProfile(p, devBundle(d.root)) };
    d.log(`CPU profile of the Worker: ${path.relative(process.cwd(), file)} (open it in Chrome DevTools, Performance tab)`);
  }
  return { ...count, wallMs, clientCpu, cpu, tcp, profile, timeline: timeline.points };
}
