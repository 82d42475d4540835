// @ts-check
/**
 * `npm run bench:search`: one user's search (SearchMessages, the exact SQL of sql/generated/search.queries.ts)
 * on a large table, straight against Postgres (no Worker).
 *
 * A scratch embedded Postgres gets the real migrations, then --users users (default 100) with --chats chats in all
 * (default 10,000, spread evenly) and --messages messages in all (default 1,000,000, spread evenly, alternately
 * user and assistant, over the last 90 days). Each message is ~20 words drawn from a vocabulary of 20,000 words
 * with a log-uniform (Zipf-like) law: word 0 is in most messages ("common"), word 100 in about 2% ("medium"),
 * word 15,000 in about 0.01% ("rare"). The rows go in through the trigger (as the hot insert does); the GIN index
 * is dropped for the seeding and built again afterwards, as the migration builds it, then the table is analyzed.
 *
 * Then, for each query shape, --runs searches (default 200), each for another user picked in turn, first page
 * (limit 20): words, a phrase, -word, or, and a word nobody wrote. Prints p50/p95/p99 per shape (client round trip
 * on loopback), the EXPLAIN (ANALYZE, BUFFERS) of the slowest shape, and writes bench/results/bench-search-<time>.json.
 *
 * Options: --users N, --chats N, --messages N, --runs N, --out DIR.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { fmt, gitInfo, machineInfo, packageVersion, summarize, table, writeResults } from './lib/scaletest-report.mjs';
import { loadGeneratedStatements } from './lib/scaletest-sql.mjs';
import { withMigratedScratch } from './lib/scratch-db.mjs';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const VOCABULARY = 20_000;

/** @param {string} line */
const info = (line) => process.stderr.write(`[bench:search] ${line}\n`);

/**
 * @param {string | undefined} v
 * @param {string} name
 * @param {number} fallback
 */
function int(v, name, fallback) {
  if (v === undefined) return fallback;
  if (!/^\d+$/.test(v) || Number(v) < 1) throw new Error(`--${name} wants an integer >= 1, got ${JSON.stringify(v)}`);
  return Number(v);
}

/** The n-th word of the vocabulary: its digits as letters ("w" + 0..9 → a..j), so the parser reads one word. */
const w = (/** @type {number} */ n) => `w${String(n).replace(/\d/g, (d) => String.fromCharCode(97 + Number(d)))}`;
/** The same in SQL, for the seeding. */
const W_SQL = (/** @type {string} */ expr) => `('w' || translate((${expr})::text, '0123456789', 'abcdefghij'))`;

/** The query shapes: name and q. */
/** @type {[string, string][]} */
const SHAPES = [
  ['common word', w(0)],
  ['medium word', w(100)],
  ['rare word', w(15_000)],
  ['two words', `${w(100)} ${w(3)}`],
  ['phrase', `"${w(0)} ${w(1)}"`],
  ['word -word', `${w(100)} -${w(0)}`],
  ['word or word', `${w(15_000)} or ${w(12_000)}`],
  ['no match', 'zzzznotaword'],
];

async function main() {
  const { values: a } = parseArgs({
    options: {
      users: { type: 'string' },
      chats: { type: 'string' },
      messages: { type: 'string' },
      runs: { type: 'string' },
      out: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (a.help) {
    process.stdout.write('Usage: npm run bench:search -- [--users N] [--chats N] [--messages N] [--runs N] [--out DIR]\n');
    return 0;
  }
  const users = int(a.users, 'users', 100);
  const chats = int(a.chats, 'chats', 10_000);
  const messages = int(a.messages, 'messages', 1_000_000);
  const runs = int(a.runs, 'runs', 200);
  const outDir = path.resolve(a.out ?? path.join(ROOT, 'bench', 'results'));
  const perChat = Math.max(1, Math.floor(messages / chats));

  const search = loadGeneratedStatements(ROOT).find((s) => s.name === 'SearchMessages');
  if (!search) throw new Error('SearchMessages is not in sql/generated/search.queries.ts');

  const startedAt = new Date().toISOString();
  info('starting a scratch Postgres');
  return await withMigratedScratch('bench-search', async (db) => {
    const version = String((await db.query('SHOW server_version')).rows[0]?.server_version ?? '');

    info(`seeding ${users} users, ${chats} chats, ${perChat * chats} messages`);
    const seedStart = performance.now();
    await db.query(`INSERT INTO users (email, username, hashed_password, roles)
      SELECT 'u' || g || '@example.com', 'u' || g, 'x', ARRAY['member'] FROM generate_series(1, $1) g`, [users]);
    await db.query(`INSERT INTO chats (owner_id, title, created_at, updated_at)
      SELECT u.id, 'chat ' || g, now() - interval '90 days', now()
      FROM generate_series(0, $1 - 1) g
      JOIN (SELECT id, row_number() OVER (ORDER BY id) - 1 AS n FROM users) u ON u.n = g % $2`, [chats, users]);
    await db.query('DROP INDEX chat_messages_search_tsv');
    const chatIds = (await db.query('SELECT id FROM chats ORDER BY id')).rows.map((r) => String(r.id));
    const batch = Math.max(1, Math.floor(50_000 / perChat));
    for (let i = 0; i < chatIds.length; i += batch) {
      // The random words per message: a correlated subquery (g in it), so it runs once per row.
      await db.query(
        `INSERT INTO chat_messages (chat_id, role, content, created_at)
         SELECT c.id, CASE WHEN g % 2 = 1 THEN 'user' ELSE 'assistant' END::chat_message_role,
           jsonb_build_array(jsonb_build_object('type', 'text', 'text', (
             SELECT string_agg(${W_SQL(`floor(exp(random() * ln(${VOCABULARY}))) - 1`)}, ' ')
             FROM generate_series(1, 20 + (g % 1)) k
           ))),
           now() - interval '90 days' + (g::float8 / $2) * interval '90 days'
         FROM unnest($1::uuid[]) c (id), generate_series(1, $2) g`,
        [chatIds.slice(i, i + batch), perChat],
      );
      if ((i / batch) % 20 === 0) info(`  ${Math.min(chatIds.length, i + batch) * perChat} messages`);
    }
    const seedMs = performance.now() - seedStart;
    info('building the GIN index, analyzing');
    const indexStart = performance.now();
    await db.query('CREATE INDEX chat_messages_search_tsv ON chat_messages USING gin (search_tsv) WHERE search_tsv IS NOT NULL');
    const indexMs = performance.now() - indexStart;
    await db.query('VACUUM ANALYZE chat_messages');
    await db.query('VACUUM ANALYZE chats');
    const sizes = (await db.query(`SELECT pg_size_pretty(pg_relation_size('chat_messages')) AS heap,
      pg_size_pretty(pg_relation_size('chat_messages_search_tsv')) AS gin,
      (SELECT count(*) FROM chat_messages) AS rows`)).rows[0];
    const userIds = (await db.query('SELECT id FROM users ORDER BY id')).rows.map((r) => String(r.id));
    const freq = async (/** @type {string} */ q) =>
      Number((await db.query(`SELECT count(*) AS n FROM chat_messages WHERE search_tsv @@ websearch_to_tsquery('chatd_search', $1)`, [q])).rows[0]?.n);

    /** @param {string} userId @param {string} q */
    const params = (userId, q) => {
      /** @type {Record<string, unknown>} */
      const byName = { user_id: userId, q, limit: 20, offset: 0 };
      return search.params.map((p) => byName[p]);
    };
    // Warm the cache the way a running deployment has it: one pass of every shape.
    for (const [, q] of SHAPES) for (const u of userIds.slice(0, 10)) await db.query(search.sql, params(u, q));

    /** @type {{ shape: string, q: string, matches: number, results: number, stats: ReturnType<typeof summarize> }[]} */
    const rows = [];
    for (const [shape, q] of SHAPES) {
      const lat = [];
      let results = 0;
      for (let i = 0; i < runs; i++) {
        const t0 = performance.now();
        const r = await db.query(search.sql, params(userIds[i % userIds.length] ?? '', q));
        lat.push(performance.now() - t0);
        results += r.rowCount ?? 0;
      }
      rows.push({ shape, q, matches: await freq(q), results: Math.round(results / runs), stats: summarize(lat) });
      info(`  ${shape}: p50 ${fmt(summarize(lat).p50)} ms`);
    }
    const slowest = rows.reduce((x, y) => ((y.stats.p99 ?? 0) > (x.stats.p99 ?? 0) ? y : x));
    const explain = (await db.query(`EXPLAIN (ANALYZE, BUFFERS) ${search.sql}`, params(userIds[0] ?? '', slowest.q))).rows
      .map((r) => String(r['QUERY PLAN']))
      .join('\n');

    const out = [
      `bench:search on PostgreSQL ${version}: ${sizes?.rows} messages (${users} users, ${chats} chats), heap ${sizes?.heap}, GIN ${sizes?.gin}`,
      `seeded in ${fmt(seedMs / 1000, 1)} s (through the trigger), index built in ${fmt(indexMs / 1000, 1)} s; ${runs} searches per shape, one user each, limit 20`,
      '',
      table(
        ['shape', 'q', 'matching rows (all users)', 'results/page', 'p50 ms', 'p95 ms', 'p99 ms', 'max ms'],
        rows.map((r) => [r.shape, r.q, fmt(r.matches), fmt(r.results), fmt(r.stats.p50), fmt(r.stats.p95), fmt(r.stats.p99), fmt(r.stats.max)]),
      ),
      '',
      `EXPLAIN (ANALYZE, BUFFERS) of the slowest shape (${slowest.shape}):`,
      explain,
    ].join('\n');
    process.stdout.write(`${out}\n`);
    const file = await writeResults(outDir, 'bench-search', {
      startedAt,
      git: gitInfo(ROOT),
      machine: machineInfo(),
      versions: { node: process.version, postgres: version, pg: packageVersion(ROOT, 'pg') },
      options: { users, chats, messages: perChat * chats, runs },
      seedMs,
      indexMs,
      sizes,
      shapes: rows,
      explain: { shape: slowest.shape, plan: explain },
    });
    info(`wrote ${path.relative(ROOT, file)}`);
    return 0;
  });
}

main().then(
  (code) => process.exit(code),
  (e) => {
    process.stderr.write(`bench:search: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(1);
  },
);
