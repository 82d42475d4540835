// @ts-check
/**
 * `npm run bench:insights`: GET /insights' statement (GetInsights of sql/queries/operations.sql, the exact text the
 * Worker sends, from sql/generated) against a scratch Postgres seeded with --turns chat_turns rows (default
 * 1,000,000), spread evenly over the last --days days (default 365: a deployment's year), over --users users and
 * --chats chats, four models on two providers, 3% of calls failed with one of four error kinds.
 *
 * For a 30-day window (and the whole range), grouped by each key (model, provider, day, user): --runs round trips after
 * a warm-up, p50 and p99 printed, with the server's execution time (EXPLAIN ANALYZE, one run). Goal: p50 < 100 ms for
 * 30 days. Writes bench/results/bench-insights-<time>.json.
 *
 * Unless --raw, the cron's rollup (RollupTurnDays, 7 days a statement) runs first over every complete day, as in a
 * deployment, and its time is printed: the queries then read chat_turns_daily for rolled-up days and chat_turns raw for
 * today and the window's partial first day. --raw measures the query over chat_turns alone (no day rolled up).
 *
 * Options: --turns N --days N --users N --chats N --runs N --out DIR --raw.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { fmt, gitInfo, machineInfo, round2, table, timeQuery, writeResults } from './lib/scaletest-report.mjs';
import { loadGeneratedStatements } from './lib/scaletest-sql.mjs';
import { withMigratedScratch } from './lib/scratch-db.mjs';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const KEYS = ['model', 'provider', 'day', 'user'];

/** @param {string} line */
const info = (line) => process.stderr.write(`[bench-insights] ${line}\n`);

/** @param {string | undefined} v @param {string} name @param {number} fallback */
function int(v, name, fallback) {
  if (v === undefined) return fallback;
  if (!/^\d+$/.test(v) || Number(v) < 1) throw new Error(`--${name} wants a positive integer, got ${JSON.stringify(v)}`);
  return Number(v);
}

/**
 * @param {import('pg').Client} db
 * @param {{ turns: number, days: number, users: number, chats: number }} o
 */
async function seed(db, o) {
  await db.query(`INSERT INTO users (email, username, hashed_password) SELECT 'u' || n || '@example.com', 'user' || n, 'x' FROM generate_series(1, $1::int) n`, [o.users]);
  await db.query(`CREATE TEMP TABLE seed_users AS SELECT row_number() OVER (ORDER BY username) AS n, id FROM users`);
  await db.query(
    `CREATE TEMP TABLE seed_chats AS
     SELECT c AS n, gen_random_uuid() AS id, u.id AS owner_id FROM generate_series(1, $1::int) c
     JOIN seed_users u ON u.n = 1 + c % $2::int`,
    [o.chats, o.users],
  );
  await db.query(`INSERT INTO chats (id, owner_id, title) SELECT id, owner_id, 'chat ' || n FROM seed_chats`);
  // Turn i: chat 1 + i % chats, at an even spread over the window (newest first), model/provider by i % 4, failed
  // when i % 33 = 0 (kind by i % 4), times and tokens varying deterministically.
  await db.query(
    `INSERT INTO chat_turns (id, chat_id, turn_id, user_id, model_config_id, provider, model, outcome, error_kind,
                             queue_ms, first_token_ms, total_ms, input_tokens, output_tokens, cost_micros, tool_steps, created_at)
     SELECT gen_random_uuid(), c.id, 'turn-' || i, c.owner_id, NULL,
            (ARRAY['openai', 'openai', 'anthropic', 'anthropic'])[1 + i % 4],
            (ARRAY['gpt-a', 'gpt-b', 'claude-c', 'claude-d'])[1 + i % 4],
            CASE WHEN i % 33 = 0 THEN 'error' WHEN i % 7 = 0 THEN 'tool_calls' ELSE 'answered' END,
            CASE WHEN i % 33 = 0 THEN (ARRAY['rate_limit', 'provider_error', 'timeout', 'network'])[1 + (i / 33) % 4] END,
            i % 50, CASE WHEN i % 33 = 0 THEN NULL ELSE 200 + (i * 37) % 3000 END, 500 + (i * 53) % 20000,
            100 + (i * 13) % 5000, 20 + (i * 7) % 800, CASE WHEN i % 2 = 0 THEN (i * 11) % 50000 END, (i % 7 = 0)::int,
            now() - make_interval(secs => (i::float8 / $2::int) * $3::int * 86400)
     FROM generate_series(0, $2::int - 1) i
     JOIN seed_chats c ON c.n = 1 + i % $1::int`,
    [o.chats, o.turns, o.days],
  );
  await db.query('VACUUM ANALYZE chat_turns');
  const r = await db.query(`SELECT count(*)::int AS n, count(*) FILTER (WHERE created_at >= now() - interval '30 days')::int AS last30 FROM chat_turns`);
  return { turns: Number(r.rows[0]?.n), last30Days: Number(r.rows[0]?.last30), users: o.users, chats: o.chats, days: o.days };
}

async function main() {
  const { values: a } = parseArgs({
    options: { turns: { type: 'string' }, days: { type: 'string' }, users: { type: 'string' }, chats: { type: 'string' }, runs: { type: 'string' }, out: { type: 'string' }, raw: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
    strict: true,
  });
  if (a.help) {
    process.stdout.write('Usage: npm run bench:insights -- [--turns N] [--days N] [--users N] [--chats N] [--runs N] [--out DIR] [--raw]\n');
    return 0;
  }
  const turns = int(a.turns, 'turns', 1_000_000);
  const days = int(a.days, 'days', 365);
  const users = int(a.users, 'users', 200);
  const chats = int(a.chats, 'chats', 20_000);
  const runs = int(a.runs, 'runs', 20);
  const outDir = path.resolve(a.out ?? path.join(ROOT, 'bench', 'results'));
  const statement = loadGeneratedStatements(ROOT).find((s) => s.name === 'GetInsights');
  if (!statement) throw new Error('GetInsights is not in sql/generated');
  const rollup = loadGeneratedStatements(ROOT).find((s) => s.name === 'RollupTurnDays');
  if (!rollup) throw new Error('RollupTurnDays is not in sql/generated');

  const startedAt = new Date().toISOString();
  info('starting a scratch Postgres');
  return await withMigratedScratch('bench-insights', async (db) => {
    const t0 = performance.now();
    const seeded = await seed(db, { turns, days, users, chats });
    info(`seeded in ${round2((performance.now() - t0) / 1000)} s: ${JSON.stringify(seeded)}`);
    /** @type {{ days: number, statements: number, seconds: number, rows: number } | null} */
    let rolledUp = null;
    if (!a.raw) {
      const t1 = performance.now();
      let statements = 0;
      let rolledDays = 0;
      for (;;) {
        const params = rollup.params.map((p) => ({ now: new Date().toISOString(), batch: 7 })[p]);
        const r = await db.query(rollup.sql, params);
        statements++;
        rolledDays += r.rowCount ?? 0;
        if ((r.rowCount ?? 0) < 7) break;
      }
      await db.query('VACUUM ANALYZE chat_turns_daily');
      await db.query('VACUUM ANALYZE chat_turns_rollup_days');
      const n = await db.query('SELECT count(*)::int AS n FROM chat_turns_daily');
      rolledUp = { days: rolledDays, statements, seconds: round2((performance.now() - t1) / 1000), rows: Number(n.rows[0]?.n) };
      info(`rolled up ${rolledDays} days in ${statements} statements, ${rolledUp.seconds} s: ${rolledUp.rows} chat_turns_daily rows`);
    }
    const now = Date.now();
    const ranges = [
      { label: '30 days', from: new Date(now - 30 * 86_400_000).toISOString(), to: new Date(now + 60_000).toISOString() },
      { label: `${days} days (all)`, from: new Date(now - (days + 1) * 86_400_000).toISOString(), to: new Date(now + 60_000).toISOString() },
    ];
    /** @type {{ range: string, groupBy: string, rows: number, latencyMs: Awaited<ReturnType<typeof timeQuery>>['latencyMs'], serverMs: number }[]} */
    const results = [];
    for (const range of ranges) {
      for (const groupBy of KEYS) {
        const params = statement.params.map((p) => ({ group_by: groupBy, from: range.from, to: range.to })[p]);
        const r = await timeQuery(db, statement.sql, params, runs);
        results.push({ range: range.label, groupBy, ...r });
        info(`${range.label} by ${groupBy}: p50 ${fmt(r.latencyMs.p50)} ms`);
      }
    }
    const report = { tool: 'bench-insights', startedAt, finishedAt: new Date().toISOString(), args: { turns, days, users, chats, runs, raw: Boolean(a.raw) }, machine: machineInfo(), git: gitInfo(ROOT), seeded, rolledUp, results };
    const file = await writeResults(outDir, 'bench-insights', report);
    const worst30 = Math.max(...results.filter((r) => r.range === '30 days').map((r) => r.latencyMs.p50 ?? Infinity));
    process.stdout.write(
      [
        '',
        `GetInsights over ${fmt(seeded.turns, 0)} chat_turns rows (${fmt(seeded.last30Days, 0)} in the last 30 days; ${users} users, ${fmt(chats, 0)} chats, ${days} days); ${runs} runs each; ${rolledUp ? `${rolledUp.days} days rolled up into ${fmt(rolledUp.rows, 0)} chat_turns_daily rows in ${rolledUp.seconds} s` : 'raw: no day rolled up'}`,
        '',
        table(
          ['window', 'group_by', 'rows', 'p50 ms', 'p99 ms', 'server exec ms'],
          results.map((r) => [r.range, r.groupBy, fmt(r.rows, 0), fmt(r.latencyMs.p50, 2), fmt(r.latencyMs.p99, 2), fmt(r.serverMs, 2)]),
        ),
        '',
        `30-day window, slowest key: p50 ${fmt(worst30, 2)} ms (goal < 100 ms): ${worst30 < 100 ? 'met' : 'NOT met'}`,
        `results: ${path.relative(process.cwd(), file) || file}`,
        '',
      ].join('\n'),
    );
    return 0;
  });
}

process.exitCode = await main();
