// @ts-check
/**
 * `npm run scaletest -- --chats N --turns M [options]`: drives the chat backend with N chats, each with one
 * WebSocket stream, M turns per chat against the mock LLM, then reports throughput, latencies, Postgres calls
 * per turn, stream re-reads, `chats` row updates per message insert, and every lost, duplicated or out-of-order
 * durable message any client saw. A table on stdout, JSON in bench/results/scaletest-<time>.json.
 *
 * The stack: without --url, `scripts/dev.mjs` is started on free ports with a throwaway Postgres cluster and
 * Durable Object storage under .data/ (see scripts/lib/scaletest-stack.mjs), and stopped at the end. With
 * --url, that stack is used as it is; Postgres figures then need --pg-url (they are left out, saying so, without it).
 *
 * Sign-in: POST /users/first with --email/--password/--username (defaults scaletest@example.com /
 * scaletest-password / scaletest); when a first user exists, POST /users/login with the same email and password,
 * which must be an owner's. Model: the live default when it is an openai-compat provider on this machine (a mock);
 * with no default, an openai-compat provider on the mock (--mock-url, or the own stack's) and a default config
 * `mock-echo` are created; any other default is refused unless named with --model-config.
 *
 * A turn: POST (chat creation for turn 1, then POST /messages), and the turn ends when the chat's socket reports
 * status `waiting` (or `error`). The next turn of a chat starts when the previous one ended. --concurrency bounds
 * how many chats are mid-turn at once (default: all of them). Each prompt carries a mock directive
 * `[[mock chunks=<reply-words>]]`, so every reply streams that many word deltas.
 *
 * Exit status: 0 when every turn ended in `waiting` and no client saw a lost, duplicated or out-of-order durable
 * message; 2 when the run finished but some did; 1 when the run itself failed.
 *
 * This file runs the phases in order. Its parts, in scripts/lib/: scaletest-options (flags), scaletest-stack (the own
 * stack), scaletest-client (the SDK), scaletest-chat-run (ChatRun), scaletest-drive (the turns, measured), scaletest-timeline,
 * scaletest-postgres and scaletest-sql (Postgres' figures), scaletest-check (stream counters, the message check,
 * latencies), scaletest-render (the text report) and scaletest-report (shared helpers).
 */
import pg from 'pg';
import { writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Api, ensureModel, signInOwner } from './lib/scaletest-client.mjs';
import { checkMessages, latencies, streamCounters, streamsReport } from './lib/scaletest-check.mjs';
import { runTurns } from './lib/scaletest-drive.mjs';
import { openInspector } from './lib/scaletest-inspector.mjs';
import { HELP, parseOptions } from './lib/scaletest-options.mjs';
import { openPgCounters, postgresReport } from './lib/scaletest-postgres.mjs';
import { render } from './lib/scaletest-render.mjs';
import { gitInfo, machineInfo, packageVersion, round2, writeResults } from './lib/scaletest-report.mjs';
import { startLocalStack } from './lib/scaletest-stack.mjs';
import { freePort } from './lib/ports.mjs';

const ROOT = fileURLToPath(new URL('../', import.meta.url));

/** @typedef {import('./lib/scaletest-options.mjs').Options} Options */
/** @typedef {import('./lib/scaletest-stack.mjs').LocalStack} LocalStack */

/** @param {string} line */
const info = (line) => process.stderr.write(`[scaletest] ${line}\n`);

/** @param {unknown} e */
const why = (e) => (e instanceof Error ? e.message : String(e));

/**
 * The stack to drive: the one at --url, or an own one started now (stopped by Ctrl-C too).
 * @param {Options} o
 */
async function openStack(o) {
  const inspectorPort = o.cpuProfile || o.quietDev ? await freePort() : null;
  if (o.url) return { stack: null, url: o.url, pgUrl: o.pgUrl, mockBaseUrl: o.mockUrl, inspectorPort };
  const t = performance.now();
  const wranglerArgs = [...o.stackArgs];
  if (inspectorPort !== null) wranglerArgs.push('--inspector-port', String(inspectorPort));
  if (o.quietDev) wranglerArgs.push('--log-level', 'warn');
  const stack = await startLocalStack({ root: ROOT, wranglerArgs, log: info });
  info(`stack ready in ${((performance.now() - t) / 1000).toFixed(1)} s at ${stack.url}`);
  // Ctrl-C: the stack (same process group) gets it too and stops itself; wait for it, then remove its folder.
  process.once('SIGINT', () => {
    info('interrupted: stopping the stack');
    void stack.stop({ keep: o.keepStack ? 'all' : 'log' }).finally(() => process.exit(130));
  });
  return { stack, url: stack.url, pgUrl: /** @type {string | null} */ (stack.pgUrl), mockBaseUrl: /** @type {string | null} */ (stack.mockBaseUrl), inspectorPort };
}

/**
 * The owner and the model the turns use (--priced: priced, with a default spend limit; --no-titles: titles off).
 * @param {Api} api
 * @param {Options} o
 * @param {string | null} mockBaseUrl
 * @param {string | null} pgUrl
 */
async function ownerAndModel(api, o, mockBaseUrl, pgUrl) {
  const owner = await signInOwner(api, o.who);
  info(`${owner.created ? 'created the first user' : 'logged in as'} ${o.who.email}`);
  const model = await ensureModel(api, { mockBaseUrl, modelConfigId: o.modelConfigId, log: info });
  info(`model: ${model.label}`);
  if (o.priced) {
    await api.client.updateModelConfig(model.id, { pricing: { input_per_mtok: '3', output_per_mtok: '15' } });
    await api.client.setSpendLimit({ period: 'month', amount: '1000000' });
    info('priced the model (3 / 15 per million tokens) and set a default spend limit of 1000000 a month');
  }
  if (o.noTitles && pgUrl) {
    const db = new pg.Client(pgUrl);
    await db.connect();
    try {
      const value = JSON.stringify({ model_config_id: null, enabled: false });
      await db.query("INSERT INTO site_configs (key, value) VALUES ('title_model', $1) ON CONFLICT (key) DO UPDATE SET value = excluded.value", [value]);
    } finally {
      await db.end();
    }
    info('titles written by a model: off');
  }
  return model;
}

/**
 * The results JSON.
 * @param {{ o: Options, stack: LocalStack | null, url: string, machine: ReturnType<typeof machineInfo>, git: ReturnType<typeof gitInfo>,
 *   startedAt: string, pgVersion: string | null, model: Awaited<ReturnType<typeof ensureModel>>,
 *   run: Awaited<ReturnType<typeof runTurns>>, runs: import('./lib/scaletest-chat-run.mjs').ChatRun[],
 *   streams: ReturnType<typeof streamsReport>, checked: Awaited<ReturnType<typeof checkMessages>>,
 *   pgReport: Record<string, unknown> | null, pgReason: string | null, errors: Map<string, number> }} f
 */
function buildReport({ o, stack, url, machine, git, startedAt, pgVersion, model, run, runs, streams, checked, pgReport, pgReason, errors }) {
  const { chats, turns, concurrency, rolling, replyWords, chunkDelayMs, prompt, turnTimeoutMs, httpSockets } = o;
  const { done, failed, wallMs, cpu, clientCpu, profile } = run;
  return {
    tool: 'scaletest',
    startedAt,
    finishedAt: new Date().toISOString(),
    label: o.label,
    args: { chats, turns, concurrency, rolling, replyWords, chunkDelayMs, prompt, turnTimeoutMs, httpSockets, url: stack ? '(own stack)' : url, stackArgs: o.stackArgs },
    machine: { ...machine, loadavgAtEnd: os.loadavg().map(round2) },
    git,
    versions: { node: process.version, wrangler: packageVersion(ROOT, 'wrangler'), workerd: packageVersion(ROOT, 'workerd'), postgres: pgVersion },
    stack: { own: stack !== null, model: model.label, created: model.created, quietDev: o.quietDev, priced: o.priced, noTitles: o.noTitles },
    result: {
      turns: { planned: chats * turns, completed: done, failed },
      wallSeconds: round2(wallMs / 1000),
      turnsPerSecond: round2(done / (wallMs / 1000)),
      latencyMs: latencies(runs),
      streams,
      durableMessages: { ...checked.integrity, examples: checked.examples },
      postgres: pgReport ?? { unavailable: pgReason },
      cpu: cpu ? { ...cpu, clientCpuSeconds: round2((clientCpu.user + clientCpu.system) / 1e6) } : null,
      tcp: run.tcp,
      workerProfile: profile ? { file: path.basename(profile.file), ...profile.summary } : null,
      timeline: run.timeline,
      errors: Object.fromEntries([...errors.entries()].sort((x, y) => y[1] - x[1])),
    },
  };
}

/**
 * Stops the own stack, keeping what `keep` says of its folder, and adds the Postgres proxy's counts (known once it
 * has stopped) to the results already written.
 * @param {LocalStack} stack
 * @param {'all' | 'log' | 'none'} keep
 * @param {{ file: string, report: { result: Record<string, unknown> } } | null} written
 */
async function stopStack(stack, keep, written) {
  info('stopping the stack');
  const counts = await stack.stop({ keep });
  if (counts) {
    info(
      `the Postgres proxy: ${counts.clients} driver connections, ${counts.sessionsOpened} Postgres sessions opened, ` +
        `${counts.reused} connections served by a pooled session`,
    );
    if (written) {
      written.report.result.postgresProxy = counts;
      await writeFile(written.file, `${JSON.stringify(written.report, null, 2)}\n`);
    }
  }
  if (keep === 'all') {
    const pgElsewhere = path.relative(stack.dir, stack.pgDataDir).startsWith('..') ? ` (its Postgres data: ${stack.pgDataDir})` : '';
    info(`kept ${path.relative(ROOT, stack.dir)}${pgElsewhere}`);
  }
  if (keep === 'log') info(`kept the stack's log: ${path.relative(ROOT, stack.logFile)}`);
}

async function main() {
  const o = parseOptions(process.argv.slice(2), ROOT);
  if (o.help) {
    process.stdout.write(HELP);
    return 0;
  }
  const machine = machineInfo();
  const git = gitInfo(ROOT);
  const startedAt = new Date().toISOString();
  const { stack, url, pgUrl, mockBaseUrl, inspectorPort } = await openStack(o);
  /** @type {'all' | 'log' | 'none'} what of the own stack's folder to keep: stack.log stays after a failed run */
  let keep = o.keepStack ? 'all' : 'none';
  /** @type {{ file: string, report: { result: Record<string, unknown> } } | null} written; completed with the proxy's counts once the stack has stopped */
  let written = null;
  /** @type {import('./lib/scaletest-chat-run.mjs').ChatRun[]} */
  const runs = [];
  /** @type {import('./lib/scaletest-postgres.mjs').PgCounters | null} */
  let counters = null;
  /** @type {Awaited<ReturnType<typeof openInspector>> | null} */
  let inspector = null;
  /** Errors by message, counted for the report (the HTTP pool counts 503s the SDK then retried). */
  /** @type {Map<string, number>} */
  const errors = new Map();
  const countError = (/** @type {string} */ key) => errors.set(key, (errors.get(key) ?? 0) + 1);
  const api = new Api(url, { maxSockets: o.httpSockets, error: countError });
  try {
    if (inspectorPort !== null) {
      inspector = await openInspector(inspectorPort);
      if (o.quietDev) {
        await inspector.send('Network.disable');
        // wrangler relays every console line of the Worker to its Node process, which prints it: off, so the dev
        // server's printing is not measured (the isolate still runs each log call, and that cost counts).
        await inspector.send('Runtime.disable');
      }
      if (o.cpuProfile) {
        await inspector.send('Profiler.enable');
        await inspector.send('Profiler.setSamplingInterval', { interval: 1000 });
      }
    }
    const model = await ownerAndModel(api, o, mockBaseUrl, pgUrl);

    // ---- Postgres counters
    /** @type {string | null} */
    let pgReason = pgUrl ? null : 'no --pg-url given: Postgres figures are left out';
    /** @type {string | null} */
    let pgVersion = null;
    if (pgUrl) {
      const opened = await openPgCounters(pgUrl, info);
      counters = opened.counters;
      pgVersion = opened.counters ? opened.counters.version : opened.version;
      if (!opened.counters) pgReason = opened.reason;
    }
    if (pgReason) info(pgReason);

    // ---- the run
    const shared = { api, error: countError, turnTimeoutMs: o.turnTimeoutMs };
    const run = await runTurns({ o, shared, modelId: model.id, runs, stack, errors, countError, log: info, root: ROOT }, { db: counters?.db ?? null, inspector });

    // ---- Postgres: read before the checks below add their own statements.
    /** @type {Record<string, unknown> | null} */
    let pgReport = null;
    try {
      if (counters) pgReport = await postgresReport(counters, { root: ROOT, turnsRun: run.done + run.failed });
    } catch (e) {
      // The stack (and its Postgres) went down during the run: say so instead of failing the report.
      pgReport = null;
      pgReason = `Postgres counters unavailable at the end: ${why(e)}`;
      info(pgReason);
    }

    // ---- stream counters and the message check
    const ready = runs.filter((r) => r.chatId !== null);
    const stats = await streamCounters(api, ready);
    const checked = await checkMessages(api, ready, { stackDown: () => stack !== null && !stack.alive(), countError });
    const streams = streamsReport(stats, runs, pgReport, o);
    for (const r of runs) r.close();

    const report = buildReport({ o, stack, url, machine, git, startedAt, pgVersion, model, run, runs, streams, checked, pgReport, pgReason, errors });
    const file = await writeResults(o.outDir, 'scaletest', report);
    written = { file, report };
    process.stdout.write(`${render(report)}\nresults: ${path.relative(process.cwd(), file) || file}\n`);
    const { integrity } = checked;
    const bad = run.failed > 0 || integrity.lost + integrity.duplicated + integrity.outOfOrder + integrity.phantom > 0;
    if (bad && keep === 'none') keep = 'log';
    return bad ? 2 : 0;
  } catch (e) {
    if (keep === 'none') keep = 'log';
    throw e;
  } finally {
    for (const r of runs) r.close();
    inspector?.close();
    api.close();
    await counters?.db.end().catch(() => undefined);
    if (stack) await stopStack(stack, keep, written);
  }
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (e) => {
    process.stderr.write(`[scaletest] ${e instanceof Error ? e.message : String(e)}\n`);
    process.exitCode = 1;
  },
);
