// @ts-check
/**
 * `npm run faults -- [--outages 5,30] [--chats 5]`: the outage matrix. Starts the local stack (`scripts/dev.mjs`)
 * on a Postgres of its own, then, for each outage length, stops that Postgres at three points of a turn, each hit
 * by --chats chats at once, and starts it again:
 *   before-user-insert  the chats are idle; a message is POSTed during the outage (503 expected), then retried with
 *                       the same Idempotency-Key once Postgres is back, as a client would;
 *   during-stream       the model is mid-answer when Postgres stops, and finishes while it is down;
 *   during-insert       the answer's insert is in flight (blocked on a row lock) when Postgres stops.
 * Postgres is stopped in immediate mode (every backend quits mid-statement, as in a crash or a network loss), so an
 * insert in flight never completes during the stop.
 * It reports, per cell: answers kept (stored with exactly the text the model sent), duplicates, whether the chat
 * said `database_unavailable` meanwhile, and the time from Postgres answering again to the chat settled
 * (`waiting` with its answer stored, read from Postgres). A table on stdout, JSON in bench/results/faults-<time>.json.
 * Exit status 0 when every answer was kept once and every chat settled within 10 s; 2 otherwise; 1 on a failed run.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { startScratchPostgres } from './lib/scratch-db.mjs';
import { startLocalStack } from './lib/scaletest-stack.mjs';
import { rec } from './lib/scaletest-client.mjs';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const SETTLE_LIMIT_MS = 10_000;
const log = (/** @type {string} */ line) => process.stderr.write(`[faults] ${line}\n`);

const { values: args } = parseArgs({
  options: { outages: { type: 'string', default: '5,30' }, chats: { type: 'string', default: '5' }, out: { type: 'string' } },
});
const outages = (args.outages ?? '').split(',').map(Number);
const perPoint = Number(args.chats);
if (outages.some((s) => !Number.isFinite(s) || s <= 0) || !Number.isInteger(perPoint) || perPoint < 1) {
  process.stderr.write('usage: npm run faults -- [--outages 5,30] [--chats 5]\n');
  process.exit(1);
}

const sleep = (/** @type {number} */ ms) => new Promise((r) => setTimeout(r, ms));

/** The reply the mock streams for `text` with `chunks` deltas: the echo's words, cycled. */
const reply = (/** @type {string} */ text, /** @type {number} */ chunks) => {
  const words = `Echo: ${text}`.split(' ');
  return Array.from({ length: chunks }, (_, i) => words[i % words.length]).join(' ');
};

/**
 * @param {string} base
 * @param {string | null} token
 */
function client(base, token) {
  /**
   * @param {string} method
   * @param {string} p
   * @param {unknown} [body]
   * @param {Record<string, string>} [headers]
   */
  return async (method, p, body, headers = {}) => {
    const res = await fetch(`${base}${p}`, {
      method,
      headers: { ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...(token ? { authorization: `Bearer ${token}` } : {}), ...headers },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    let parsed = null;
    try {
      parsed = text ? JSON.parse(text) : null;
    } catch {
      parsed = text;
    }
    return { status: res.status, body: parsed };
  };
}

/** @param {pg.Client} db @param {string[]} ids */
async function settledChats(db, ids) {
  const r = await db.query(
    `SELECT c.id, c.status::text AS status, count(m.*) FILTER (WHERE m.role = 'assistant') AS answers
     FROM chats c LEFT JOIN chat_messages m ON m.chat_id = c.id AND NOT m.deleted
     WHERE c.id = ANY($1::uuid[]) GROUP BY c.id`,
    [ids],
  );
  return new Map(r.rows.map((row) => [String(row.id), { status: String(row.status), answers: Number(row.answers) }]));
}

async function main() {
  const pgServer = await startScratchPostgres('faults', { crashSafe: true });
  /** @type {Awaited<ReturnType<typeof startLocalStack>> | null} */
  let stack = null;
  try {
    const admin = new pg.Client(pgServer.url);
    await admin.connect();
    await admin.query('CREATE DATABASE chatd');
    await admin.end();
    const dbUrl = pgServer.urlFor('chatd');
    stack = await startLocalStack({ root: ROOT, databaseUrl: dbUrl, log });
    const anon = client(stack.url, null);
    const first = await anon('POST', '/api/v2/users/first', { email: 'faults@example.com', username: 'faults', password: 'faults-password' });
    const token = String(rec(first.body).session_token);
    const api = client(stack.url, token);
    await api('POST', '/api/v2/chats/providers', { provider: 'openai-compat', base_url: stack.mockBaseUrl });
    await api('POST', '/api/v2/chats/model-configs', { provider: 'openai-compat', model: 'mock-echo', context_limit: 100000, is_default: true });
    const mock = stack.mockUrl;
    const gate = async (/** @type {string} */ name, /** @type {string} */ act) => fetch(`${mock}/__mock/gates/${name}${act}`, act ? { method: 'POST' } : {});

    /** @type {{ outage_s: number, point: string, chats: number, kept: number, duplicates: number, signalled: number, settle_ms: number[], refused: number }[]} */
    const cells = [];
    for (const seconds of outages) {
      const tag = Math.random().toString(36).slice(2, 8);
      const startChat = async (/** @type {string} */ content) => {
        const r = await api('POST', '/api/v2/chats', { content });
        if (r.status !== 201) throw new Error(`POST /chats answered ${r.status}: ${JSON.stringify(r.body)}`);
        return String(rec(r.body).id);
      };
      // Idle chats (their first turn done) for the point before the user insert.
      const idle = await Promise.all(Array.from({ length: perPoint }, (_, i) => startChat(`idle ${i} ${tag}`)));
      // Chats whose model holds at a gate: after 3 deltas (mid-stream), or after all 6 (the insert comes next).
      const streamGate = `s${tag}`;
      const insertGate = `i${tag}`;
      const streamText = Array.from({ length: perPoint }, (_, i) => `stream ${i} ${tag}`);
      const insertText = Array.from({ length: perPoint }, (_, i) => `insert ${i} ${tag}`);
      const streaming = await Promise.all(streamText.map((t) => startChat(`${t} [[mock chunks=12 gate="${streamGate}" gate_after=3]]`)));
      const inserting = await Promise.all(insertText.map((t) => startChat(`${t} [[mock chunks=6 gate="${insertGate}" gate_after=6]]`)));
      const idleDb = new pg.Client(dbUrl);
      await idleDb.connect();
      for (;;) {
        const s = await settledChats(idleDb, idle);
        if ([...s.values()].every((c) => c.status === 'waiting' && c.answers === 1)) break;
        await sleep(100);
      }
      await idleDb.end();
      for (const g of [streamGate, insertGate]) await gate(g, `?waiting=${perPoint}&timeout_ms=30000`);

      // The inserts block on the chats' rows, then Postgres stops under them.
      const locker = new pg.Client(dbUrl);
      await locker.connect();
      locker.on('error', () => undefined);
      await locker.query('BEGIN');
      await locker.query('SELECT 1 FROM chats WHERE id = ANY($1::uuid[]) FOR UPDATE', [inserting]);
      await gate(insertGate, '/open');
      for (;;) {
        await locker.query('SELECT pg_stat_clear_snapshot()');
        const w = await locker.query("SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'");
        if (Number(w.rows[0]?.n) >= perPoint) {
          if (process.env.FAULTS_DEBUG === '1') {
            const q = await locker.query("SELECT left(query, 60) AS q, wait_event FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'");
            log(JSON.stringify(q.rows));
          }
          break;
        }
        await sleep(20);
      }
      log(`outage of ${seconds} s: stopping Postgres`);
      await pgServer.pause({ immediate: true });
      const down = Date.now();
      await locker.end().catch(() => undefined);
      await gate(streamGate, '/open');

      // During the outage: a new message is refused; the others say what is happening.
      const keys = idle.map(() => crypto.randomUUID());
      const post = (/** @type {string} */ id, /** @type {number} */ i) =>
        api('POST', `/api/v2/chats/${id}/messages`, { content: `late ${i} ${tag}` }, { 'idempotency-key': keys[i] ?? '' });
      const refused = (await Promise.all(idle.map(post))).filter((r) => r.status === 503).length;
      // What a client reading the chat sees while Postgres is down (GET /chats/{id}, answered from the object).
      /** @type {Set<string>} */
      const signalled = new Set();
      while (Date.now() - down < seconds * 1000) {
        await Promise.all(
          [...streaming, ...inserting].map(async (id) => {
            const r = await api('GET', `/api/v2/chats/${id}`);
            if (rec(rec(r.body).last_error).kind === 'database_unavailable') signalled.add(id);
          }),
        );
        await sleep(Math.min(500, Math.max(0, seconds * 1000 - (Date.now() - down))));
      }
      await pgServer.resume();
      const up = Date.now();
      log(`Postgres answers again after ${((up - down) / 1000).toFixed(1)} s`);

      // The clients of the refused messages retry them with the same key, as the SDK does.
      const retried = Promise.all(
        idle.map(async (id, i) => {
          for (;;) {
            const r = await post(id, i);
            if (r.status === 201 || r.status === 202) return;
            await sleep(250);
          }
        }),
      );
      const db = new pg.Client(dbUrl);
      await db.connect();
      /** @type {Map<string, number>} */
      const settledAt = new Map();
      const all = [...idle, ...streaming, ...inserting];
      const want = new Map(all.map((id) => [id, idle.includes(id) ? 2 : 1]));
      while (settledAt.size < all.length && Date.now() - up < 60_000) {
        const s = await settledChats(db, all);
        for (const [id, c] of s) if (!settledAt.has(id) && c.status === 'waiting' && c.answers >= (want.get(id) ?? 1)) settledAt.set(id, Date.now() - up);
        await sleep(50);
      }
      await retried;

      /** @param {string} point @param {string[]} ids @param {(i: number) => string[]} expected */
      const judge = async (point, ids, expected) => {
        let kept = 0;
        let duplicates = 0;
        for (const [i, id] of ids.entries()) {
          const r = await db.query("SELECT role::text AS role, content FROM chat_messages WHERE chat_id = $1 AND NOT deleted AND role IN ('user', 'assistant') ORDER BY id", [id]);
          const texts = r.rows.map((row) => `${String(row.role)}:${(Array.isArray(row.content) ? /** @type {unknown[]} */ (row.content) : []).map((p) => String(rec(p).text ?? '')).join('')}`);
          const exp = expected(i);
          if (JSON.stringify(texts) === JSON.stringify(exp)) kept += 1;
          else {
            const st = await db.query('SELECT status::text AS status, last_error FROM chats WHERE id = $1', [id]);
            log(`${point}: chat ${id} holds ${JSON.stringify(texts)} (${JSON.stringify(st.rows[0])}), expected ${JSON.stringify(exp)}`);
          }
          duplicates += Math.max(0, texts.length - new Set(texts).size);
        }
        cells.push({
          outage_s: seconds,
          point,
          chats: ids.length,
          kept,
          duplicates,
          signalled: ids.filter((id) => signalled.has(id)).length,
          settle_ms: ids.map((id) => settledAt.get(id) ?? Infinity),
          refused: point === 'before-user-insert' ? refused : 0,
        });
      };
      await judge('before-user-insert', idle, (i) => [`user:idle ${i} ${tag}`, `assistant:Echo: idle ${i} ${tag}`, `user:late ${i} ${tag}`, `assistant:Echo: late ${i} ${tag}`]);
      await judge('during-stream', streaming, (i) => [
        `user:${streamText[i] ?? ''} [[mock chunks=12 gate="${streamGate}" gate_after=3]]`,
        `assistant:${reply(streamText[i] ?? '', 12)}`,
      ]);
      await judge('during-insert', inserting, (i) => [
        `user:${insertText[i] ?? ''} [[mock chunks=6 gate="${insertGate}" gate_after=6]]`,
        `assistant:${reply(insertText[i] ?? '', 6)}`,
      ]);
      await db.end();
    }

    const max = (/** @type {number[]} */ xs) => Math.max(...xs);
    const rows = cells.map((c) => [
      `${c.outage_s} s`,
      c.point,
      `${c.kept}/${c.chats}`,
      String(c.duplicates),
      c.point === 'before-user-insert' ? `${c.refused}/${c.chats} refused (503)` : `${c.signalled}/${c.chats}`,
      Number.isFinite(max(c.settle_ms)) ? `${max(c.settle_ms)} ms` : 'never',
    ]);
    const head = ['outage', 'point of failure', 'answers kept', 'duplicates', 'database_unavailable seen', 'settled after (max)'];
    process.stdout.write(`\n| ${head.join(' | ')} |\n|${head.map(() => '---').join('|')}|\n${rows.map((r) => `| ${r.join(' | ')} |`).join('\n')}\n\n`);
    const out = args.out ?? path.join(ROOT, 'bench', 'results');
    await mkdir(out, { recursive: true });
    const file = path.join(out, `faults-${new Date().toISOString().replace(/[-:]/g, '').replace(/\..*$/, '')}.json`);
    await writeFile(file, `${JSON.stringify({ perPoint, outages, cells }, null, 2)}\n`);
    log(`results: ${path.relative(ROOT, file)}`);
    const ok = cells.every((c) => c.kept === c.chats && c.duplicates === 0 && max(c.settle_ms) < SETTLE_LIMIT_MS);
    return ok ? 0 : 2;
  } finally {
    await stack?.stop({ keep: process.env.FAULTS_KEEP === '1' ? 'log' : 'none' });
    await pgServer.stop();
  }
}

main().then(
  (code) => process.exit(code),
  (e) => {
    process.stderr.write(`[faults] ${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(1);
  },
);
