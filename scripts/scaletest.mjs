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
 */
import { writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { ChatdError } from '@chatd-edge/sdk';
import { Api, ChatRun, Semaphore, compareIds, ensureModel, mapLimit, serverMessageIds, signInOwner } from './lib/scaletest-client.mjs';
import { OTHER, WORKERD_APP, WORKERD_DEV, cpuByGroup, fdsByGroup, fmt, gitInfo, machineInfo, packageVersion, progress, round2, sampleProcesses, sampleTcp, summarize, table, tcpDelta, writeResults } from './lib/scaletest-report.mjs';
import { TAG, groupByName, loadGeneratedStatements, nameOf, pgSnapshot, statementNames, tableDelta } from './lib/scaletest-sql.mjs';
import { devBundle, openInspector, summarizeProfile } from './lib/scaletest-inspector.mjs';
import { startLocalStack } from './lib/scaletest-stack.mjs';
import { freePort } from './lib/ports.mjs';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const DEFAULT_RESULTS = path.join(ROOT, 'bench', 'results');

const HELP = `Usage: npm run scaletest -- --chats N --turns M [options]

  --chats N            chats, one WebSocket each (default 10)
  --turns M            turns per chat (default 3)
  --concurrency C      at most C chats mid-turn at once (default: all)
  --rolling            C chats at a time, each from its first turn to its last, its stream closed after it (so at most
                       C streams are open; without it every chat's stream stays open for the whole run)
  --reply-words W      words in each mock reply, streamed one delta each (default 20)
  --chunk-delay-ms D   mock delay between deltas (default 0)
  --prompt P           the message text (default "Hello from the scale test"); chat and turn numbers are appended
  --url URL            use this running stack instead of starting one
  --pg-url URL         its Postgres (for pg_stat_statements / pg_stat_user_tables); without it those figures are left out
  --mock-url URL       the mock LLM base URL (…/v1) for a stack without a default model (default with --url: none)
  --model-config ID    use this model config (even a real one)
  --email E --password P --username U   the owner to create or log in as
  --turn-timeout-ms T  a turn not ended after T ms fails its chat (default 120000)
  --http-sockets S     keep-alive HTTP connections to the Worker (default min(concurrency, 256))
  --stack-arg A        extra argument for wrangler dev (repeatable), e.g. --stack-arg=--var --stack-arg=PG_IDLE_CLOSE_MS:2000
  --label L            free text stored in the results
  --out DIR            where the results JSON goes (default bench/results)
  --keep-stack         keep the own stack's folder under .data/ (Postgres data, stack.log)
  --sample-s S         timeline: every S seconds, turns done, Postgres connections, open files and CPU of the stack (default 5)
  --cpu-profile        (own stack) a V8 CPU profile of the Worker's isolate (Worker + Durable Objects) during the turns,
                       through wrangler's inspector: top modules and functions in the report, the profile next to the JSON
  --priced             (own stack) price the model (3 / 15 per million tokens in / out) and set a default spend limit
                       of 1000000 a month (never reached), so every turn asks its user's spend meter and records a cost
  --quiet-dev          (own stack) leave out wrangler dev's own instrumentation: --log-level warn (no request log line per
                       request) and the runtime's Network domain off (wrangler enables it and relays every subrequest
                       chunk to its Node process); measures the app with less of the dev server's overhead
`;

/**
 * @typedef {{ t: number, done: number, failed: number, turnsPerSecond: number, midTurn: number, errors: number,
 *   pgConnections: Record<string, number> | null, pgConnectionsByLastStatement: Record<string, number> | null,
 *   openFiles: Record<string, number>, cores: Record<string, number> }} TimelinePoint
 */

/**
 * @param {string | undefined} v
 * @param {string} name
 * @param {number} fallback
 * @param {number} [min]
 */
function int(v, name, fallback, min = 1) {
  if (v === undefined) return fallback;
  if (!/^\d+$/.test(v) || Number(v) < min) throw new Error(`--${name} wants an integer >= ${min}, got ${JSON.stringify(v)}`);
  return Number(v);
}

/** @param {string} line */
const info = (line) => process.stderr.write(`[scaletest] ${line}\n`);

async function main() {
  const { values: a } = parseArgs({
    options: {
      chats: { type: 'string' },
      turns: { type: 'string' },
      concurrency: { type: 'string' },
      'reply-words': { type: 'string' },
      'chunk-delay-ms': { type: 'string' },
      prompt: { type: 'string' },
      url: { type: 'string' },
      'pg-url': { type: 'string' },
      'mock-url': { type: 'string' },
      'model-config': { type: 'string' },
      email: { type: 'string' },
      password: { type: 'string' },
      username: { type: 'string' },
      'turn-timeout-ms': { type: 'string' },
      'http-sockets': { type: 'string' },
      'stack-arg': { type: 'string', multiple: true },
      label: { type: 'string' },
      out: { type: 'string' },
      'keep-stack': { type: 'boolean' },
      'sample-s': { type: 'string' },
      'cpu-profile': { type: 'boolean' },
      'quiet-dev': { type: 'boolean' },
      rolling: { type: 'boolean' },
      priced: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (a.help) {
    process.stdout.write(HELP);
    return 0;
  }
  const chats = int(a.chats, 'chats', 10);
  const turns = int(a.turns, 'turns', 3);
  const concurrency = Math.min(int(a.concurrency, 'concurrency', chats), chats);
  const replyWords = int(a['reply-words'], 'reply-words', 20);
  const chunkDelayMs = int(a['chunk-delay-ms'], 'chunk-delay-ms', 0, 0);
  const turnTimeoutMs = int(a['turn-timeout-ms'], 'turn-timeout-ms', 120_000);
  const httpSockets = int(a['http-sockets'], 'http-sockets', Math.min(concurrency, 256));
  const prompt = a.prompt ?? 'Hello from the scale test';
  const who = { email: a.email ?? 'scaletest@example.com', password: a.password ?? 'scaletest-password', username: a.username ?? 'scaletest' };
  const outDir = path.resolve(a.out ?? DEFAULT_RESULTS);
  const sampleMs = int(a['sample-s'], 'sample-s', 5) * 1000;
  const directive = `[[mock chunks=${replyWords}${chunkDelayMs > 0 ? ` chunk_delay_ms=${chunkDelayMs}` : ''}]]`;

  const machine = machineInfo();
  const git = gitInfo(ROOT);
  const startedAt = new Date().toISOString();

  // ---- the stack
  /** @type {Awaited<ReturnType<typeof startLocalStack>> | null} */
  let stack = null;
  let url = a.url ?? '';
  let pgUrl = a['pg-url'] ?? null;
  let mockBaseUrl = a['mock-url'] ?? null;
  const rolling = a.rolling === true;
  const cpuProfile = a['cpu-profile'] === true;
  const quietDev = a['quiet-dev'] === true;
  if (a.url && (cpuProfile || quietDev)) throw new Error('--cpu-profile and --quiet-dev need the tool to start its own stack (no --url)');
  if (a.url && a.priced) throw new Error('--priced changes the model config and the spend limit: it needs the tool to start its own stack (no --url)');
  const inspectorPort = cpuProfile || quietDev ? await freePort() : null;
  if (!a.url) {
    const t = performance.now();
    const wranglerArgs = [...(a['stack-arg'] ?? [])];
    if (inspectorPort !== null) wranglerArgs.push('--inspector-port', String(inspectorPort));
    if (quietDev) wranglerArgs.push('--log-level', 'warn');
    stack = await startLocalStack({ root: ROOT, wranglerArgs, log: info });
    info(`stack ready in ${((performance.now() - t) / 1000).toFixed(1)} s at ${stack.url}`);
    const own = stack;
    // Ctrl-C: the stack (same process group) gets it too and stops itself; wait for it, then remove its folder.
    process.once('SIGINT', () => {
      info('interrupted: stopping the stack');
      void own.stop({ keep: a['keep-stack'] === true ? 'all' : 'log' }).finally(() => process.exit(130));
    });
    url = stack.url;
    pgUrl = stack.pgUrl;
    mockBaseUrl = stack.mockBaseUrl;
  }
  /** @type {'all' | 'log' | 'none'} what of the own stack's folder to keep: stack.log stays after a failed run */
  let keep = a['keep-stack'] === true ? 'all' : 'none';
  /** @type {{ file: string, report: { result: Record<string, unknown> } } | null} written; completed with the proxy's counts once the stack has stopped */
  let written = null;
  /** @type {ChatRun[]} */
  const runs = [];
  /** @type {pg.Client | null} */
  let db = null;
  /** @type {Awaited<ReturnType<typeof openInspector>> | null} */
  let inspector = null;
  /** Errors by message, counted for the report (the HTTP pool counts 503s the SDK then retried). */
  /** @type {Map<string, number>} */
  const errors = new Map();
  const countError = (/** @type {string} */ key) => errors.set(key, (errors.get(key) ?? 0) + 1);
  const api = new Api(url, { maxSockets: httpSockets, error: countError });
  try {
    if (inspectorPort !== null) {
      inspector = await openInspector(inspectorPort);
      if (quietDev) await inspector.send('Network.disable');
      if (cpuProfile) {
        await inspector.send('Profiler.enable');
        await inspector.send('Profiler.setSamplingInterval', { interval: 1000 });
      }
    }
    // ---- owner and model
    const owner = await signInOwner(api, who);
    info(`${owner.created ? 'created the first user' : 'logged in as'} ${who.email}`);
    const model = await ensureModel(api, { mockBaseUrl, modelConfigId: a['model-config'] ?? null, log: info });
    info(`model: ${model.label}`);
    if (a.priced) {
      await api.client.updateModelConfig(model.id, { pricing: { input_per_mtok: '3', output_per_mtok: '15' } });
      await api.client.setSpendLimit({ period: 'month', amount: '1000000' });
      info('priced the model (3 / 15 per million tokens) and set a default spend limit of 1000000 a month');
    }

    // ---- Postgres counters
    /** @type {string | null} */
    let pgReason = pgUrl ? null : 'no --pg-url given: Postgres figures are left out';
    /** @type {Awaited<ReturnType<typeof pgSnapshot>> | null} */
    let pgStart = null;
    let pgVersion = null;
    if (pgUrl) {
      try {
        db = new pg.Client({ connectionString: pgUrl, application_name: 'chatd-scaletest' });
        // A lost connection (the stack went down) must not crash the run; the figures will say so.
        db.on('error', (e) => {
          info(`lost the Postgres counters connection: ${e.message}`);
        });
        await db.connect();
        pgVersion = String((await db.query(`${TAG} SHOW server_version`)).rows[0]?.server_version ?? '');
        await db.query(`${TAG} CREATE EXTENSION IF NOT EXISTS pg_stat_statements`);
        await db.query(`${TAG} SELECT pg_stat_statements_reset()`);
        pgStart = await pgSnapshot(db, { statements: false });
      } catch (e) {
        pgReason = `Postgres counters unavailable: ${e instanceof Error ? e.message : String(e)}`;
        await db?.end().catch(() => undefined);
        db = null;
      }
    }
    if (pgReason) info(pgReason);

    // ---- the run
    const shared = { api, error: countError, turnTimeoutMs };
    const sem = new Semaphore(concurrency);
    const total = chats * turns;
    let done = 0;
    let failed = 0;
    const bar = progress({ total, label: 'turns' });
    const ticker = setInterval(() => {
      bar.update(done + failed, `mid-turn ${sem.held}  failed ${failed}  errors ${[...errors.values()].reduce((x, y) => x + y, 0)}`);
    }, 250);
    const text = (/** @type {number} */ chat, /** @type {number} */ turn) => `${prompt} (chat ${chat + 1}, turn ${turn}) ${directive}`;
    if (cpuProfile && inspector) await inspector.send('Profiler.start');
    const rootPid = stack?.pid ?? null;
    const publicPort = stack ? Number(new URL(stack.url).port) : null;
    const cpuStart = sampleProcesses({ rootPid, publicPort });
    const tcpStart = sampleTcp();
    const clientCpuStart = process.cpuUsage();
    const t0 = performance.now();
    // The timeline: where a run slows down or stalls, and what the stack holds at that moment.
    /** @type {TimelinePoint[]} */
    const timeline = [];
    let prevSample = cpuStart;
    let prevDone = 0;
    let sampling = false;
    const statsDb = db;
    const namesForActivity = statementNames(loadGeneratedStatements(ROOT));
    const sampler = setInterval(() => {
      if (sampling) return;
      sampling = true;
      void (async () => {
        const now = sampleProcesses({ rootPid, publicPort, fds: true });
        const cpuNow = cpuByGroup(prevSample, now);
        prevSample = now;
        /** @type {Record<string, number> | null} */
        let conns = null;
        /** @type {Record<string, number> | null} */
        let lastQuery = null;
        if (statsDb) {
          const r = await statsDb
            .query(`${TAG} SELECT coalesce(state, '?') AS state, query FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'`)
            .catch(() => null);
          if (r) {
            /** @type {Record<string, number>} */
            const byState = {};
            /** @type {Record<string, number>} */
            const byQuery = {};
            for (const row of r.rows) {
              const st = String(row.state);
              byState[st] = (byState[st] ?? 0) + 1;
              // Who holds the connections: the last statement each one ran (a chat object's insert/status
              // update, a Worker request's read, an auth shard's lookup).
              const q = String(row.query ?? '').trim() ? nameOf(namesForActivity, String(row.query)).name : '(none yet)';
              byQuery[q] = (byQuery[q] ?? 0) + 1;
            }
            conns = byState;
            lastQuery = byQuery;
          }
        }
        const secs = (performance.now() - t0) / 1000;
        timeline.push({
          t: round2(secs),
          done,
          failed,
          turnsPerSecond: round2((done - prevDone) / (sampleMs / 1000)),
          midTurn: sem.held,
          errors: [...errors.values()].reduce((x, y) => x + y, 0),
          pgConnections: conns,
          pgConnectionsByLastStatement: lastQuery,
          openFiles: fdsByGroup(now),
          cores: Object.fromEntries((cpuNow?.groups ?? []).map((g) => [g.group, g.cores])),
        });
        prevDone = done;
      })().finally(() => {
        sampling = false;
      });
    }, sampleMs);
    /** Runs a chat's turns; each turn holds a slot of the semaphore. */
    const runChat = async (/** @type {number} */ i) => {
      const run = new ChatRun(i, shared);
      runs.push(run);
      for (let turn = 1; turn <= turns; turn++) {
        const release = await sem.acquire();
        let timing;
        try {
          timing = turn === 1 ? await run.create(text(i, turn), model.id) : await run.send(turn, text(i, turn));
        } finally {
          release();
        }
        if (!timing) {
          // The chat cannot go on (no chat, no stream, a refused POST, or a turn that never ended).
          run.abandoned = true;
          run.turnsFailed += turns - turn + 1;
          failed += turns - turn + 1;
          break;
        }
        if (timing.ok) run.turnsOk += 1;
        else run.turnsFailed += 1;
        if (timing.ok) done += 1;
        else failed += 1;
      }
      return run;
    };
    // When the own stack dies mid-run (wrangler crashed), fail the turns in flight now instead of after their timeout.
    const watchdog = setInterval(() => {
      if (!stack || stack.alive()) return;
      clearInterval(watchdog);
      countError(`the stack stopped during the run (see ${path.relative(ROOT, stack.logFile)})`);
      info(`the stack stopped during the run; failing the turns in flight (log: ${path.relative(ROOT, stack.logFile)})`);
      for (const r of runs) r.abortTurn();
    }, 1000);
    if (rolling) {
      // C chats at a time, each from its first turn to its last; its stream closes after it, so at most C are open.
      await mapLimit(
        Array.from({ length: chats }, (_, i) => i),
        concurrency,
        async (i) => {
          const run = await runChat(i);
          await run.closeGracefully();
        },
      );
    } else {
      await Promise.all(Array.from({ length: chats }, (_, i) => runChat(i)));
    }
    clearInterval(watchdog);
    const wallMs = performance.now() - t0;
    const clientCpu = process.cpuUsage(clientCpuStart);
    clearInterval(sampler);
    const cpuEnd = sampleProcesses({ rootPid, publicPort });
    const tcp = tcpDelta(tcpStart, sampleTcp());
    clearInterval(ticker);
    bar.finish(done + failed, `failed ${failed}`);
    const cpu = cpuByGroup(cpuStart, cpuEnd);
    /** @type {{ file: string, summary: ReturnType<typeof summarizeProfile> } | null} */
    let profile = null;
    if (cpuProfile && inspector) {
      const r = await inspector.send('Profiler.stop');
      const p = /** @type {Parameters<typeof summarizeProfile>[0]} */ (/** @type {unknown} */ (r.profile));
      const file = await writeResults(outDir, 'scaletest-cpuprofile', p, { pretty: false });
      profile = { file, summary: summarizeProfile(p, devBundle(ROOT)) };
      info(`CPU profile of the Worker: ${path.relative(process.cwd(), file)} (open it in Chrome DevTools, Performance tab)`);
    }

    // ---- Postgres: read before the checks below add their own statements.
    /** @type {Record<string, unknown> | null} */
    let pgReport = null;
    const pgStartSnap = pgStart;
    const pgDb = db;
    /** Postgres' figures for the run, or why there are none. */
    const readPostgres = async () => {
      if (!pgDb || !pgStartSnap) return null;
      const db = pgDb;
      const pgStart = pgStartSnap;
      const generated = loadGeneratedStatements(ROOT);
      let end = await pgSnapshot(db);
      // Table counters reach pg_stat_user_tables when a backend flushes them: at most ~10 s after it goes idle,
      // or when it exits. pg_stat_statements is immediate, so wait until the tables show at least the rows the
      // statements report (inserted messages; chats rows UPDATEd by status changes), and two reads agree.
      const floor = () => {
        const g = groupByName(end.statements, generated);
        return { ins: g.find((x) => x.name === 'InsertChatMessages')?.rows ?? 0, upd: g.filter((x) => x.updatesChats).reduce((u, x) => u + x.rows, 0) };
      };
      const waitUntil = Date.now() + 25_000;
      let settled = false;
      for (let prev = ''; Date.now() < waitUntil; ) {
        const d = tableDelta(end.tables, pgStart.tables);
        const sig = JSON.stringify(d);
        const f = floor();
        if ((d.chat_messages?.ins ?? 0) >= f.ins && (d.chats?.upd ?? 0) >= f.upd && sig === prev) {
          settled = true;
          break;
        }
        prev = sig;
        await new Promise((r) => setTimeout(r, 1000));
        end = await pgSnapshot(db);
      }
      const named = groupByName(end.statements, generated).sort((x, y) => Number(y.toplevel) - Number(x.toplevel) || y.calls - x.calls);
      const top = named.filter((g) => g.toplevel);
      const delta = tableDelta(end.tables, pgStart.tables);
      const messageInserts = delta.chat_messages?.ins ?? 0;
      const chatsUpdates = delta.chats?.upd ?? 0;
      // UPDATEs of chats by other statements (status changes, ...) are counted by pg_stat_statements' rows;
      // what remains is what InsertChatMessages' updated_chat CTE did.
      const otherChatUpdates = named.filter((g) => g.updatesChats).reduce((s, g) => s + g.rows, 0);
      const turnsRun = done + failed;
      pgReport = {
        serverVersion: pgVersion,
        countersSettled: settled,
        statements: named.map((g) => ({
          name: g.name,
          known: g.known,
          toplevel: g.toplevel,
          calls: g.calls,
          perTurn: turnsRun ? round2(g.calls / turnsRun) : null,
          rows: g.rows,
          totalMs: round2(g.totalMs),
          meanMs: g.calls ? Math.round((g.totalMs / g.calls) * 1000) / 1000 : null,
        })),
        // Round trips: statements clients sent. Nested ones (foreign-key checks) run inside them, time included.
        totalCalls: top.reduce((s, g) => s + g.calls, 0),
        totalCallsPerTurn: turnsRun ? round2(top.reduce((s, g) => s + g.calls, 0) / turnsRun) : null,
        totalDbMs: round2(top.reduce((s, g) => s + g.totalMs, 0)),
        nestedCalls: named.filter((g) => !g.toplevel).reduce((s, g) => s + g.calls, 0),
        tables: delta,
        messageInserts,
        chatsUpdates,
        chatsUpdatesByOtherStatements: otherChatUpdates,
        chatsUpdatesPerMessageInsert: messageInserts ? Math.round((chatsUpdates / messageInserts) * 1000) / 1000 : null,
        insertCausedChatsUpdates: chatsUpdates - otherChatUpdates,
        insertCausedChatsUpdatesPerMessageInsert: messageInserts ? Math.round(((chatsUpdates - otherChatUpdates) / messageInserts) * 1000) / 1000 : null,
        sessionsOpened: end.sessions !== null && pgStart.sessions !== null ? end.sessions - pgStart.sessions : null,
        sessionsOpenedPerTurn: end.sessions !== null && pgStart.sessions !== null && turnsRun ? round2((end.sessions - pgStart.sessions) / turnsRun) : null,
        backendsAtEnd: end.backends,
      };
      return pgReport;
    };
    try {
      await readPostgres();
    } catch (e) {
      // The stack (and its Postgres) went down during the run: say so instead of failing the report.
      pgReport = null;
      pgReason = `Postgres counters unavailable at the end: ${e instanceof Error ? e.message : String(e)}`;
      info(pgReason);
    }

    // ---- stream counters and the message check
    const ready = runs.filter((r) => r.chatId !== null);
    const stats = { cacheCatchups: 0, dbCatchups: 0, fullRefreshes: 0, sockets: 0, compactions: 0, unavailable: 0 };
    await mapLimit(ready, 16, async (r) => {
      const b = await api.client.streamStats(String(r.chatId)).catch(() => null);
      if (!b) {
        stats.unavailable += 1;
        return;
      }
      for (const k of /** @type {const} */ (['cacheCatchups', 'dbCatchups', 'fullRefreshes', 'sockets', 'compactions'])) {
        const v = b[k];
        if (typeof v === 'number') stats[k] += v;
      }
    });
    const integrity = {
      expected: 0,
      onServer: 0,
      seenByClients: 0,
      lost: 0,
      duplicated: 0,
      outOfOrder: 0,
      phantom: 0,
      partGaps: 0,
      chatsWithProblems: 0,
      chatsChecked: 0,
      chatsWithoutStream: 0,
      checkFailed: 0,
      checkRetries: 0,
    };
    /** @type {string[]} */
    const examples = [];
    // Only chats whose stream opened can have lost anything; a chat created but never streamed is a failed turn.
    const streamed = ready.filter((r) => r.connectedOnce);
    integrity.chatsWithoutStream = ready.length - streamed.length;
    await mapLimit(streamed, 16, async (r) => {
      const chatId = String(r.chatId);
      /** @returns {Promise<{ server: number[], lost: number[], phantom: number[] } | null>} */
      const check = async () => {
        // The check is not the workload: a refused read (a 503 while the stack is still busy) is retried.
        for (let attempt = 1; ; attempt++) {
          try {
            const server = await serverMessageIds(api, chatId);
            return { server, ...compareIds(r.ids, server) };
          } catch (e) {
            // Retried: an answer (a 503 while the stack is still busy). Not: no stack to answer.
            const down = !(e instanceof ChatdError) || e.status === 0 || (stack !== null && !stack.alive());
            if (attempt < 4 && !down) {
              integrity.checkRetries += 1;
              await new Promise((res) => setTimeout(res, 1000 * attempt));
              continue;
            }
            countError(`GET /messages: ${e instanceof Error ? e.message : String(e)}`);
            return null;
          }
        }
      };
      let c = await check();
      if (c && c.lost.length > 0 && r.abandoned) {
        // A chat given up on mid-turn may still be finishing that turn: give its stream a moment to deliver.
        await new Promise((res) => setTimeout(res, 2000));
        c = await check();
      }
      if (!c) {
        integrity.checkFailed += 1;
        return;
      }
      integrity.chatsChecked += 1;
      const { server, lost, phantom } = c;
      integrity.expected += 2 * r.turnsOk;
      integrity.onServer += server.length;
      integrity.seenByClients += r.ids.length;
      integrity.lost += lost.length;
      integrity.phantom += phantom.length;
      integrity.duplicated += r.duplicates;
      integrity.outOfOrder += r.outOfOrder;
      integrity.partGaps += r.partGaps;
      if (lost.length || phantom.length || r.duplicates || r.outOfOrder) {
        integrity.chatsWithProblems += 1;
        if (examples.length < 10) {
          examples.push(`chat ${chatId}: ${[...(lost.length ? [`lost ${lost.slice(0, 5).join(',')}`] : []), ...(phantom.length ? [`not on server ${phantom.slice(0, 5).join(',')}`] : []), ...r.examples].join('; ')}`);
        }
      }
    });
    // The stream's counters live in each chat object's memory and restart when it hibernates or is evicted;
    // Postgres' own count of the read they stand for (GetChatMessagesByChatID: catch-ups on a cache miss, full
    // refreshes, and a cold object's history for the model) does not.
    const pgCalls = (/** @type {string} */ name) => {
      const st = pgReport && Array.isArray(pgReport.statements) ? /** @type {{ name: string, calls: number }[]} */ (pgReport.statements) : null;
      return st ? (st.find((q) => q.name === name)?.calls ?? 0) : null;
    };
    const followUps = chats * (turns - 1);
    const per = (/** @type {number | null} */ n) => (n === null || followUps === 0 ? null : Math.round((n / followUps) * 1000) / 1000);
    const streams = {
      ...stats,
      followUpTurns: followUps,
      reReadsPerFollowUpTurn: turns > 1 ? Math.round((stats.dbCatchups / followUps) * 1000) / 1000 : null,
      historyReads: pgCalls('GetChatMessagesByChatID'),
      historyReadsPerFollowUpTurn: per(pgCalls('GetChatMessagesByChatID')),
      coldChatLoads: pgCalls('GetChatByID'),
      coldChatLoadsPerFollowUpTurn: per(pgCalls('GetChatByID')),
      clientReconnects: runs.reduce((s, r) => s + r.reconnects, 0),
      unexpectedCloses: runs.reduce((s, r) => s + r.unexpectedCloses, 0),
      fullRefreshesSeen: runs.reduce((s, r) => s + r.fullRefreshes, 0),
    };
    for (const r of runs) r.close();

    // ---- latencies
    const timings = runs.flatMap((r) => r.timings);
    const follow = timings.filter((t) => t.turn > 1);
    const first = timings.filter((t) => t.turn === 1);
    const latency = {
      messagePost: summarize(follow.map((t) => t.postMs)),
      firstPart: summarize(follow.flatMap((t) => (t.firstPartMs === null ? [] : [t.firstPartMs]))),
      turnEnd: summarize(follow.map((t) => t.endMs)),
      chatCreatePost: summarize(first.map((t) => t.postMs)),
      createToFirstTurnEnd: summarize(first.map((t) => t.endMs)),
    };

    const report = {
      tool: 'scaletest',
      startedAt,
      finishedAt: new Date().toISOString(),
      label: a.label ?? null,
      args: { chats, turns, concurrency, rolling, replyWords, chunkDelayMs, prompt, turnTimeoutMs, httpSockets, url: stack ? '(own stack)' : url, stackArgs: a['stack-arg'] ?? [] },
      machine: { ...machine, loadavgAtEnd: os.loadavg().map(round2) },
      git,
      versions: { node: process.version, wrangler: packageVersion(ROOT, 'wrangler'), workerd: packageVersion(ROOT, 'workerd'), postgres: pgVersion },
      stack: { own: stack !== null, model: model.label, created: model.created, quietDev, priced: a.priced === true },
      result: {
        turns: { planned: total, completed: done, failed },
        wallSeconds: round2(wallMs / 1000),
        turnsPerSecond: round2(done / (wallMs / 1000)),
        latencyMs: latency,
        streams,
        durableMessages: { ...integrity, examples },
        postgres: pgReport ?? { unavailable: pgReason },
        cpu: cpu ? { ...cpu, clientCpuSeconds: round2((clientCpu.user + clientCpu.system) / 1e6) } : null,
        tcp,
        workerProfile: profile ? { file: path.basename(profile.file), ...profile.summary } : null,
        timeline,
        errors: Object.fromEntries([...errors.entries()].sort((x, y) => y[1] - x[1])),
      },
    };
    const file = await writeResults(outDir, 'scaletest', report);
    written = { file, report };
    process.stdout.write(`${render(report)}\nresults: ${path.relative(process.cwd(), file) || file}\n`);
    const bad = failed > 0 || integrity.lost + integrity.duplicated + integrity.outOfOrder + integrity.phantom > 0;
    if (bad && keep === 'none') keep = 'log';
    return bad ? 2 : 0;
  } catch (e) {
    if (keep === 'none') keep = 'log';
    throw e;
  } finally {
    for (const r of runs) r.close();
    inspector?.close();
    api.close();
    await db?.end().catch(() => undefined);
    if (stack) {
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
  }
}

/**
 * The report as text.
 * @param {{ args: { chats: number, turns: number, concurrency: number, rolling: boolean, replyWords: number, chunkDelayMs: number, url: string },
 *   machine: ReturnType<typeof machineInfo>, git: ReturnType<typeof gitInfo>, versions: Record<string, string | null>,
 *   stack: { model: string }, label: string | null,
 *   result: { turns: { planned: number, completed: number, failed: number }, wallSeconds: number, turnsPerSecond: number,
 *     latencyMs: Record<string, import('./lib/scaletest-report.mjs').Summary>, streams: Record<string, number | null>,
 *     durableMessages: Record<string, number | string[]>, postgres: Record<string, unknown>,
 *     cpu: (NonNullable<ReturnType<typeof cpuByGroup>> & { clientCpuSeconds: number }) | null, tcp: Record<string, number> | null,
    timeline: TimelinePoint[],
    workerProfile: (ReturnType<typeof summarizeProfile> & { file: string }) | null,
    errors: Record<string, number> } }} r
 * @returns {string}
 */
function render(r) {
  const { args, result: x } = r;
  const out = [];
  out.push('');
  out.push(`chatd-edge scale test: ${args.chats} chats x ${args.turns} turns, concurrency ${args.concurrency}${args.rolling ? ' (rolling)' : ''}, ${args.replyWords}-word replies${args.chunkDelayMs ? ` (${args.chunkDelayMs} ms between deltas)` : ''}${r.label ? ` [${r.label}]` : ''}`);
  out.push(
    `stack ${args.url}, model ${r.stack.model}; commit ${r.git.commit?.slice(0, 10) ?? '?'}${r.git.dirty ? ' (with uncommitted changes)' : ''}; ` +
      `${r.machine.cpus} x ${r.machine.cpuModel}, ${r.machine.totalMemGiB} GiB, Node ${r.machine.node}, wrangler ${r.versions.wrangler ?? '?'}, Postgres ${r.versions.postgres ?? '?'}`,
  );
  out.push('');
  out.push(
    table(
      ['throughput', 'value'],
      [
        ['turns completed', `${fmt(x.turns.completed)} / ${fmt(x.turns.planned)}`],
        ['turns failed', fmt(x.turns.failed)],
        ['wall time (all turns)', `${fmt(x.wallSeconds)} s`],
        ['turns per second', fmt(x.turnsPerSecond)],
      ],
    ),
  );
  out.push('');
  const lat = (/** @type {string} */ label, /** @type {import('./lib/scaletest-report.mjs').Summary | undefined} */ s) =>
    s ? [label, fmt(s.n), fmt(s.mean), fmt(s.p50), fmt(s.p95), fmt(s.p99), fmt(s.max)] : [label];
  out.push(
    table(
      ['latency (ms)', 'n', 'mean', 'p50', 'p95', 'p99', 'max'],
      [
        lat('message POST (follow-up turns)', x.latencyMs.messagePost),
        lat('time to first part', x.latencyMs.firstPart),
        lat('time to turn end', x.latencyMs.turnEnd),
        lat('chat create POST (turn 1)', x.latencyMs.chatCreatePost),
        lat('create to turn 1 end (+ socket)', x.latencyMs.createToFirstTurnEnd),
      ],
    ),
  );
  out.push('');
  const s = x.streams;
  out.push(
    table(
      ['streams', 'value'],
      [
        ['stream re-reads (dbCatchups)', fmt(s.dbCatchups)],
        ['re-reads per follow-up turn', fmt(s.reReadsPerFollowUpTurn, 3)],
        ['GetChatMessagesByChatID per follow-up turn (Postgres)', fmt(s.historyReadsPerFollowUpTurn ?? null, 3)],
        ['GetChatByID (cold chat object) per follow-up turn', fmt(s.coldChatLoadsPerFollowUpTurn ?? null, 3)],
        ['catch-ups from the cache', fmt(s.cacheCatchups)],
        ['full refreshes', fmt(s.fullRefreshes)],
        ['sockets open at the end (server)', fmt(s.sockets)],
        ['client reconnects / unexpected closes', `${fmt(s.clientReconnects)} / ${fmt(s.unexpectedCloses)}`],
        ['chats whose counters were unavailable', fmt(s.unavailable)],
      ],
    ),
  );
  out.push('');
  const d = x.durableMessages;
  const n = (/** @type {string} */ k) => (typeof d[k] === 'number' ? fmt(/** @type {number} */ (d[k])) : 'n/a');
  out.push(
    table(
      ['durable messages', 'value'],
      [
        ['expected (2 per completed turn)', n('expected')],
        ['on the server (GET /messages)', n('onServer')],
        ['received by the clients', n('seenByClients')],
        ['lost', n('lost')],
        ['duplicated', n('duplicated')],
        ['out of order', n('outOfOrder')],
        ['received but not on the server', n('phantom')],
        ['message_part seq gaps', n('partGaps')],
        ['chats with a problem', n('chatsWithProblems')],
        ['chats checked (stream opened)', n('chatsChecked')],
        ['chats whose stream never opened', n('chatsWithoutStream')],
        ['chats not checked (GET /messages failed 4 times)', n('checkFailed')],
      ],
    ),
  );
  if (Array.isArray(d.examples) && d.examples.length) for (const e of d.examples) out.push(`  ${e}`);
  out.push('');
  const p = x.postgres;
  if (Array.isArray(p.statements)) {
    const rows = /** @type {{ name: string, calls: number, perTurn: number | null, rows: number, totalMs: number, meanMs: number | null }[]} */ (p.statements);
    out.push(
      table(
        ['Postgres statements (pg_stat_statements)', 'calls', 'per turn', 'rows', 'total ms', 'mean ms'],
        [
          ...rows.map((q) => [q.name, fmt(q.calls), fmt(q.perTurn), fmt(q.rows), fmt(q.totalMs), fmt(q.meanMs, 3)]),
          ['total sent by clients (nested ones not counted)', fmt(/** @type {number} */ (p.totalCalls)), fmt(/** @type {number | null} */ (p.totalCallsPerTurn)), '', fmt(/** @type {number} */ (p.totalDbMs)), ''],
        ],
      ),
    );
    out.push('');
    const num = (/** @type {string} */ k, digits = 2) => fmt(/** @type {number | null} */ (p[k] ?? null), digits);
    out.push(
      table(
        ['Postgres tables (pg_stat_user_tables)', 'value'],
        [
          ['chat_messages rows inserted', num('messageInserts')],
          ['chats row updates (all statements)', num('chatsUpdates')],
          ['  of which status/meta UPDATEs (rows)', num('chatsUpdatesByOtherStatements')],
          ['  of which by InsertChatMessages', num('insertCausedChatsUpdates')],
          ['chats updates per message insert (all)', num('chatsUpdatesPerMessageInsert', 3)],
          ['chats updates per message insert (by the insert)', num('insertCausedChatsUpdatesPerMessageInsert', 3)],
          ['Postgres sessions opened', num('sessionsOpened')],
          ['sessions opened per turn', num('sessionsOpenedPerTurn')],
          ['connections open at the end', num('backendsAtEnd')],
          ['counters settled', p.countersSettled === true ? 'yes' : 'no (statistics still not flushed after 25 s)'],
        ],
      ),
    );
  } else {
    out.push(`Postgres: ${String(p.unavailable)}`);
  }
  out.push('');
  if (x.cpu) {
    out.push(
      table(
        [`CPU during the turns (${fmt(x.cpu.wallSeconds)} s, machine busy ${fmt(x.cpu.machineBusyPct)}%)`, 'cpu s', 'cores', '% of busy'],
        x.cpu.groups.map((g) => [g.group, fmt(g.cpuSeconds), fmt(g.cores), fmt(g.pctOfBusy)]),
      ),
    );
    out.push('');
  }
  if (x.workerProfile) {
    const wp = x.workerProfile;
    out.push(
      table(
        [`Worker isolate CPU profile: ${fmt(wp.totalMs / 1000)} s busy of ${fmt(wp.wallMs / 1000)} s (by module, self time)`, 'ms', '%'],
        wp.byModule.slice(0, 15).map((m) => [m.module, fmt(m.ms, 0), fmt(m.pct, 1)]),
      ),
    );
    out.push('');
    out.push(table(['hottest functions (self time)', 'ms', '%'], wp.byFunction.slice(0, 20).map((f) => [f.fn.slice(0, 110), fmt(f.ms, 0), fmt(f.pct, 1)])));
    out.push('');
  }
  if (x.timeline.length) {
    const stackGroups = [WORKERD_APP, WORKERD_DEV, 'wrangler (node)', 'dev.mjs (pg proxy + mock LLM)', 'postgres'];
    /** @type {Record<string, string>} */
    const short = { [WORKERD_APP]: 'app workerd', [WORKERD_DEV]: 'dev workerd', 'wrangler (node)': 'wrangler', 'dev.mjs (pg proxy + mock LLM)': 'dev.mjs', postgres: 'postgres' };
    out.push(
      table(
        ['timeline (s)', 'done', 'failed', 'turns/s', 'mid-turn', 'errors', 'pg conns', 'app workerd fds', 'dev workerd fds', ...stackGroups.map((g) => `${short[g] ?? g} cores`), 'other cores', 'pg conns by last statement'],
        x.timeline.map((p) => {
          const conns = p.pgConnections ? Object.values(p.pgConnections).reduce((u, v) => u + v, 0) : null;
          return [
            fmt(p.t, 0),
            fmt(p.done),
            fmt(p.failed),
            fmt(p.turnsPerSecond, 1),
            fmt(p.midTurn),
            fmt(p.errors),
            fmt(conns),
            fmt(p.openFiles[WORKERD_APP] ?? p.openFiles.workerd ?? null),
            fmt(p.openFiles[WORKERD_DEV] ?? null),
            ...stackGroups.map((g) => fmt(p.cores[g] ?? 0)),
            fmt(p.cores[OTHER] ?? 0),
            Object.entries(p.pgConnectionsByLastStatement ?? {})
              .sort((u, v) => v[1] - u[1])
              .slice(0, 3)
              .map(([k, v]) => `${k} ${v}`)
              .join(', '),
          ];
        }),
      ),
    );
    out.push('');
  }
  if (x.tcp) {
    out.push(
      `TCP on this machine during the turns: ${fmt(x.tcp.ListenOverflows ?? null)} accept-queue overflows, ${fmt(x.tcp.ListenDrops ?? null)} SYNs dropped, ` +
        `${fmt(x.tcp.TCPTimeouts ?? null)} retransmission timeouts`,
    );
    out.push('');
  }
  const errs = Object.entries(x.errors);
  if (errs.length) {
    out.push(table(['errors', 'count'], errs.slice(0, 20).map(([k, v]) => [k.slice(0, 150), fmt(v)])));
    out.push('');
  }
  return out.join('\n');
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
