// @ts-check
/**
 * `npm run bench:usage`: the usage reports and the ledger's cost on the hot path, against a scratch Postgres seeded
 * with --messages chat messages (default 1,000,000: half user messages, half answers).
 *
 * Seed: --users users (the first one heavy: a tenth of all chats besides its share), --chats chats of equal length,
 * each active over 1 to 5 days within the last 60, switching between four model configs (two priced) every 20
 * messages; the answers carry usage and, on priced models, a cost. The ledger is built from them as
 * InsertChatMessages would have, then VACUUM ANALYZE.
 *
 * Reports: every report statement of sql/generated/usage.queries.ts (the exact text the Worker sends) over the last
 * 30 days and over a year, for the heavy user and for everyone; and the spend meter's GetSpendState. Each runs
 * --runs times after a warm-up; the table gives the client round trip (median, p95) and the server's execution time
 * (EXPLAIN ANALYZE, one run).
 *
 * Hot path: InsertChatMessages as a named prepared statement (as the chat objects run it), one message per call,
 * interleaved in blocks of 100, --iterations per variant: an
 * answer without the ledger CTEs (the statement as it was before the ledger: the CTEs cut out of the text), an
 * unpriced answer and a priced answer with it, and a user message with and without it (where the CTE does nothing).
 *
 * Options: --messages N --users N --chats N --runs N --iterations N --out DIR. Writes bench/results/bench-usage-<time>.json.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { fmt, gitInfo, machineInfo, round2, summarize, table, timeQuery, writeResults } from './lib/scaletest-report.mjs';
import { TAG, loadGeneratedStatements } from './lib/scaletest-sql.mjs';
import { withMigratedScratch } from './lib/scratch-db.mjs';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const REPORTS = ['GetUsageByDay', 'GetUsageByModel', 'GetUsageByChat', 'GetUsageByUser'];

/** @param {string} line */
const info = (line) => process.stderr.write(`[bench-usage] ${line}\n`);

/**
 * @param {string | undefined} v
 * @param {string} name
 * @param {number} fallback
 */
function int(v, name, fallback) {
  if (v === undefined) return fallback;
  if (!/^\d+$/.test(v) || Number(v) < 1) throw new Error(`--${name} wants a positive integer, got ${JSON.stringify(v)}`);
  return Number(v);
}

/** @param {number} ms */
const isoDay = (ms) => new Date(ms).toISOString().slice(0, 10);

/**
 * Seeds users, configs, chats, messages and the ledger.
 * @param {import('pg').Client} db
 * @param {{ users: number, chats: number, perChat: number }} o
 */
async function seed(db, o) {
  await db.query(`INSERT INTO users (email, username, hashed_password) SELECT 'u' || n || '@example.com', 'user' || n, 'x' FROM generate_series(1, $1::int) n`, [o.users]);
  await db.query(`CREATE TEMP TABLE seed_users AS SELECT row_number() OVER (ORDER BY username) AS n, id FROM users`);
  await db.query(`INSERT INTO chat_providers (provider, base_url) VALUES ('openai-compat', 'http://127.0.0.1:9/v1')`);
  const pricing = JSON.stringify({ input_per_mtok: '3', output_per_mtok: '15' });
  await db.query(
    `INSERT INTO chat_model_configs (provider, model, context_limit, pricing) VALUES
       ('openai-compat', 'priced-a', 100000, $1::jsonb), ('openai-compat', 'priced-b', 100000, $1::jsonb),
       ('openai-compat', 'free-c', 100000, NULL), ('openai-compat', 'free-d', 100000, NULL)`,
    [pricing],
  );
  await db.query(`CREATE TEMP TABLE seed_configs AS SELECT row_number() OVER (ORDER BY model) AS n, id, pricing IS NOT NULL AS priced FROM chat_model_configs`);
  // Chat c belongs to the heavy user 1 when c % 10 = 0, else to user 1 + c % users; it starts within the last 60 days
  // (c * 7919 mod a prime, so every user's chats spread over the whole range) and lasts 1 to 5 days.
  await db.query(
    `CREATE TEMP TABLE seed_chats AS
     SELECT c AS n, gen_random_uuid() AS id, u.id AS owner_id,
            now() - make_interval(days => ((c * 7919) % 104729) % 60, secs => (c * 31) % 86400) AS started, 1 + c % 5 AS span_days
     FROM generate_series(1, $1::int) c
     JOIN seed_users u ON u.n = CASE WHEN c % 10 = 0 THEN 1 ELSE 1 + c % $2::int END`,
    [o.chats, o.users],
  );
  await db.query(
    `INSERT INTO chats (id, owner_id, title, last_model_config_id, created_at, updated_at)
     SELECT s.id, s.owner_id, 'chat ' || s.n, (SELECT id FROM seed_configs WHERE n = 1), s.started, s.started FROM seed_chats s`,
  );
  info(`seeding ${o.chats * o.perChat} messages`);
  await db.query(
    `INSERT INTO chat_messages (chat_id, role, content, model_config_id, created_by, input_tokens, output_tokens, total_tokens,
                                reasoning_tokens, cache_read_tokens, cache_creation_tokens, cost_micros, created_at)
     SELECT s.id,
            CASE WHEN j % 2 = 1 THEN 'user' ELSE 'assistant' END::chat_message_role,
            '[{"type":"text","text":"Echo: twenty words of text to make the row about as large as a real one, more or less"}]'::jsonb,
            cfg.id,
            CASE WHEN j % 2 = 1 THEN s.owner_id END,
            CASE WHEN j % 2 = 0 THEN 100 + j * 10 END,
            CASE WHEN j % 2 = 0 THEN 20 END,
            CASE WHEN j % 2 = 0 THEN 120 + j * 10 END,
            CASE WHEN j % 2 = 0 THEN 0 END,
            CASE WHEN j % 2 = 0 THEN 0 END,
            CASE WHEN j % 2 = 0 THEN 0 END,
            CASE WHEN j % 2 = 0 AND cfg.priced THEN (100 + j * 10) * 3 + 20 * 15 END,
            LEAST(s.started + (j - 1) * make_interval(days => s.span_days) / $1::int, now())
     FROM seed_chats s
     CROSS JOIN generate_series(1, $1::int) j
     JOIN seed_configs cfg ON cfg.n = 1 + (s.n + j / 20) % 4`,
    [o.perChat],
  );
  info('building the ledger');
  // As InsertChatMessages adds to it, answer by answer (and as the migration's backfill does).
  const sums = `count(*) AS turns, count(*) FILTER (WHERE m.cost_micros IS NULL) AS unpriced_turns, sum(m.input_tokens) AS input_tokens,
     sum(m.output_tokens) AS output_tokens, sum(m.reasoning_tokens) AS reasoning_tokens, sum(m.cache_read_tokens) AS cache_read_tokens,
     sum(m.cache_creation_tokens) AS cache_creation_tokens, COALESCE(sum(m.cost_micros), 0) AS cost_micros`;
  const columns = 'turns, unpriced_turns, input_tokens, output_tokens, reasoning_tokens, cache_read_tokens, cache_creation_tokens, cost_micros';
  await db.query(
    `INSERT INTO usage_daily (user_id, day, model_config_id, ${columns})
     SELECT c.owner_id, (m.created_at AT TIME ZONE 'UTC')::date, m.model_config_id, ${sums}
     FROM chat_messages m JOIN chats c ON c.id = m.chat_id WHERE m.role = 'assistant' GROUP BY 1, 2, 3`,
  );
  await db.query(
    `INSERT INTO usage_by_chat (chat_id, day, user_id, ${columns})
     SELECT m.chat_id, (m.created_at AT TIME ZONE 'UTC')::date, c.owner_id, ${sums}
     FROM chat_messages m JOIN chats c ON c.id = m.chat_id WHERE m.role = 'assistant' GROUP BY 1, 2, 3`,
  );
  await db.query('VACUUM ANALYZE');
  const count = async (/** @type {string} */ t) => Number((await db.query(`SELECT count(*) AS n FROM ${t}`)).rows[0]?.n ?? 0);
  return {
    users: await count('users'),
    chats: await count('chats'),
    messages: await count('chat_messages'),
    dailyRows: await count('usage_daily'),
    byChatRows: await count('usage_by_chat'),
  };
}

/**
 * InsertChatMessages without the ledger CTEs: its text with `, answers AS (...), daily ..., by_chat ...` cut out (the statement as it was).
 * @param {string} sql
 */
function withoutLedger(sql) {
  const start = sql.indexOf('), answers AS (');
  const end = sql.indexOf('\n)\nSELECT inserted.*');
  if (start < 0 || end < start) throw new Error('InsertChatMessages has no ledger CTEs where the bench expects them');
  return `${sql.slice(0, start + 1)}${sql.slice(end + 2)}`;
}

/**
 * The hot path: InsertChatMessages variants, one message per call, interleaved in blocks of 100.
 * @param {import('pg').Client} db
 * @param {{ sql: string, params: string[] }} insert
 * @param {number} iterations
 */
async function hotPath(db, insert, iterations) {
  const [user] = (await db.query(`SELECT id FROM seed_users WHERE n = 2`)).rows;
  const [cfg] = (await db.query(`SELECT id FROM seed_configs WHERE n = 1`)).rows;
  const chat = async () => String((await db.query(`INSERT INTO chats (owner_id, title, last_model_config_id) VALUES ($1, 'hot', $2) RETURNING id`, [user.id, cfg.id])).rows[0]?.id);
  const text = JSON.stringify([{ type: 'text', text: 'Echo: hello from the bench, twenty words of text to make the row about as large as a real one' }]);
  const usage = { input_tokens: 120, output_tokens: 20, total_tokens: 140, reasoning_tokens: 0, cache_read_tokens: 0, cache_creation_tokens: 0 };
  const plain = withoutLedger(insert.sql);
  /**
   * @param {string} label
   * @param {string} sql
   * @param {'user' | 'assistant'} role
   * @param {string | null} cost
   */
  const variant = async (label, sql, role, cost) => {
    const chatId = await chat();
    /** @param {Record<string, unknown>} byName */
    const ordered = (byName) => insert.params.map((n) => byName[n]);
    return {
      label,
      sql,
      /** @type {number[]} */
      ms: [],
      params: () =>
        ordered({
          model_config_id: cfg.id,
          chat_id: chatId,
          roles: [role],
          contents: [text],
          created_bys: [role === 'user' ? user.id : ''],
          usages: [JSON.stringify(role === 'user' ? null : { ...usage, cost_micros: cost })],
          keys: [''],
          status: null,
          last_error: null,
        }),
    };
  };
  const variants = [
    await variant('answer, without the ledger CTE (before)', plain, 'assistant', null),
    await variant('answer, unpriced (ledger CTE)', insert.sql, 'assistant', null),
    await variant('answer, priced (ledger CTE)', insert.sql, 'assistant', '660'),
    await variant('user message, without the ledger CTE (before)', plain, 'user', null),
    await variant('user message (ledger CTE, inert)', insert.sql, 'user', null),
  ];
  // Named prepared statements, as the chat objects' connections run them (parsed once, planned per their cache).
  const run = (/** @type {typeof variants[number]} */ v, /** @type {number} */ k) => db.query({ name: `hot${k}`, text: v.sql, values: v.params() });
  for (const [k, v] of variants.entries()) for (let i = 0; i < 200; i++) await run(v, k);
  for (let done = 0; done < iterations; done += 100) {
    for (const [k, v] of variants.entries()) {
      for (let i = 0; i < Math.min(100, iterations - done); i++) {
        const t = performance.now();
        await run(v, k);
        v.ms.push(performance.now() - t);
      }
    }
  }
  return variants.map((v) => ({ label: v.label, ops: v.ms.length, latencyMs: summarize(v.ms) }));
}

async function main() {
  const { values: a } = parseArgs({
    options: {
      messages: { type: 'string' },
      users: { type: 'string' },
      chats: { type: 'string' },
      runs: { type: 'string' },
      iterations: { type: 'string' },
      out: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (a.help) {
    process.stdout.write('Usage: npm run bench:usage -- [--messages N] [--users N] [--chats N] [--runs N] [--iterations N] [--out DIR]\n');
    return 0;
  }
  const messages = int(a.messages, 'messages', 1_000_000);
  const users = int(a.users, 'users', 100);
  const chats = int(a.chats, 'chats', 20_000);
  const perChat = Math.max(2, Math.round(messages / chats));
  const runs = int(a.runs, 'runs', 30);
  const iterations = int(a.iterations, 'iterations', 3000);
  const outDir = path.resolve(a.out ?? path.join(ROOT, 'bench', 'results'));
  const statements = loadGeneratedStatements(ROOT);
  const byName = (/** @type {string} */ n) => {
    const s = statements.find((x) => x.name === n);
    if (!s) throw new Error(`${n} is not in sql/generated`);
    return s;
  };

  const startedAt = new Date().toISOString();
  info('starting a scratch Postgres');
  return await withMigratedScratch('bench-usage', async (db) => {
    const t0 = performance.now();
    const seeded = await seed(db, { users, chats, perChat });
    info(`seeded in ${round2((performance.now() - t0) / 1000)} s: ${JSON.stringify(seeded)}`);
    const heavy = String((await db.query(`${TAG} SELECT id FROM seed_users WHERE n = 1`)).rows[0]?.id);
    const today = Date.now();
    const ranges = [
      { label: '30 days', from: isoDay(today - 29 * 86_400_000), to: isoDay(today) },
      { label: '366 days', from: isoDay(today - 365 * 86_400_000), to: isoDay(today) },
    ];
    /** @type {{ statement: string, who: string, range: string, rows: number, latencyMs: ReturnType<typeof summarize>, serverMs: number }[]} */
    const reports = [];
    for (const range of ranges) {
      for (const who of [{ label: 'heavy user', id: heavy }, { label: 'everyone', id: null }]) {
        for (const name of REPORTS) {
          if (name === 'GetUsageByUser' && who.id !== null) continue;
          const s = byName(name);
          const params = s.params.map((p) => ({ user_id: who.id, from: range.from, to: range.to })[p]);
          reports.push({ statement: name, who: who.label, range: range.label, ...(await timeQuery(db, s.sql, params, runs)) });
        }
      }
    }
    const meter = byName('GetSpendState');
    const meterParams = meter.params.map((p) => ({ user_id: heavy, day_start: isoDay(today), month_start: `${isoDay(today).slice(0, 8)}01` })[p]);
    reports.push({ statement: 'GetSpendState', who: 'heavy user', range: 'day + month', ...(await timeQuery(db, meter.sql, meterParams, runs)) });

    info(`hot path: ${iterations} inserts per variant`);
    const hot = await hotPath(db, byName('InsertChatMessages'), iterations);

    const report = { tool: 'bench-usage', startedAt, finishedAt: new Date().toISOString(), args: { messages, users, chats, perChat, runs, iterations }, machine: machineInfo(), git: gitInfo(ROOT), seeded, reports, hotPath: hot };
    const file = await writeResults(outDir, 'bench-usage', report);
    process.stdout.write(
      [
        '',
        `usage reports over ${fmt(seeded.messages, 0)} messages (ledger: ${fmt(seeded.dailyRows, 0)} usage_daily rows, ${fmt(seeded.byChatRows, 0)} usage_by_chat rows; ${seeded.users} users, ${fmt(seeded.chats, 0)} chats); ${runs} runs each`,
        '',
        table(
          ['statement', 'for', 'days', 'rows', 'median ms', 'p95 ms', 'server exec ms'],
          reports.map((r) => [r.statement, r.who, r.range, fmt(r.rows, 0), fmt(r.latencyMs.p50, 2), fmt(r.latencyMs.p95, 2), fmt(r.serverMs, 2)]),
        ),
        '',
        `InsertChatMessages, ${iterations} calls per variant, interleaved in blocks of 100 (one message per call)`,
        '',
        table(['variant', 'mean ms', 'p50 ms', 'p99 ms'], hot.map((h) => [h.label, fmt(h.latencyMs.mean, 3), fmt(h.latencyMs.p50, 3), fmt(h.latencyMs.p99, 3)])),
        '',
        `results: ${path.relative(process.cwd(), file) || file}`,
        '',
      ].join('\n'),
    );
    return 0;
  });
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (e) => {
    process.stderr.write(`[bench-usage] ${e instanceof Error ? e.message : String(e)}\n`);
    process.exitCode = 1;
  },
);
