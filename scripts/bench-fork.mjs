// @ts-check
/**
 * `npm run bench:fork`: forking a long chat through the local stack (wrangler dev: workerd, Postgres). Seeds one chat
 * of --messages alternating user/assistant messages (default 1,000) straight into Postgres, then forks it at its newest
 * message --runs times, one after the other (POST /chats/{id}/fork, the whole request: the object, the one ForkChat
 * statement), and prints p50/p90/max. Checks every fork holds all the messages.
 *
 * Options: --messages N (default 1000) --runs N (default 20). Writes bench/results/bench-fork-<time>.json.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { startLocalStack } from './lib/scaletest-stack.mjs';
import { rec } from './lib/scaletest-client.mjs';
import { quantile } from './lib/scaletest-report.mjs';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const log = (/** @type {string} */ line) => process.stderr.write(`[bench-fork] ${line}\n`);
const { values: args } = parseArgs({ options: { messages: { type: 'string', default: '1000' }, runs: { type: 'string', default: '20' } } });
const messages = Number(args.messages);
const runs = Number(args.runs);
if (!Number.isInteger(messages) || messages < 1 || !Number.isInteger(runs) || runs < 1) {
  process.stderr.write('usage: npm run bench:fork -- [--messages 1000] [--runs 20]\n');
  process.exit(1);
}

async function main() {
  const stack = await startLocalStack({ root: ROOT, log });
  const db = new pg.Client({ connectionString: stack.pgUrl });
  await db.connect();
  try {
    const first = await fetch(`${stack.url}/api/v2/users/first`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ email: 'fork@example.com', username: 'fork', password: 'bench-fork-password' }),
    });
    const body = rec(await first.json());
    const token = String(body.session_token);
    const ownerId = String(rec(body.user).id);
    const chatId = String((await db.query('INSERT INTO chats (owner_id, title) VALUES ($1, $2) RETURNING id', [ownerId, 'Long chat to fork'])).rows[0]?.id);
    const inserted = await db.query(
      `INSERT INTO chat_messages (chat_id, role, content)
       SELECT $1, (CASE WHEN i % 2 = 1 THEN 'user' ELSE 'assistant' END)::chat_message_role,
              jsonb_build_array(jsonb_build_object('type', 'text', 'text', 'Message number ' || i || ' with some text to copy, ' || repeat('word ', 40)))
       FROM generate_series(1, $2::int) AS i RETURNING id`,
      [chatId, messages],
    );
    const lastId = Math.max(...inserted.rows.map((r) => Number(r.id)));
    log(`seeded chat ${chatId}: ${messages} messages`);
    const fork = async () => {
      const started = performance.now();
      const r = await fetch(`${stack.url}/api/v2/chats/${chatId}/fork`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ message_id: lastId }),
      });
      const text = await r.text();
      const ms = performance.now() - started;
      if (r.status !== 201) throw new Error(`fork: ${r.status} ${text}`);
      return { ms, id: String(rec(JSON.parse(text)).id) };
    };
    await fork(); // warm-up: the object's first life, the isolate's caches
    /** @type {number[]} */
    const times = [];
    for (let i = 0; i < runs; i++) {
      const f = await fork();
      times.push(f.ms);
      const n = Number((await db.query('SELECT count(*)::int AS n FROM chat_messages WHERE chat_id = $1 AND NOT deleted', [f.id])).rows[0]?.n);
      if (n !== messages) throw new Error(`fork ${f.id} holds ${n} messages, not ${messages}`);
    }
    const result = { messages, runs, p50Ms: Math.round(quantile(times, 0.5)), p90Ms: Math.round(quantile(times, 0.9)), maxMs: Math.round(Math.max(...times)) };
    process.stdout.write(`\nfork of a ${messages}-message chat, ${runs} one after the other (POST /chats/{id}/fork, whole request): p50 ${result.p50Ms} ms, p90 ${result.p90Ms} ms, max ${result.maxMs} ms; every fork holds all ${messages} messages\n\n`);
    const out = path.join(ROOT, 'bench', 'results');
    await mkdir(out, { recursive: true });
    const file = path.join(out, `bench-fork-${new Date().toISOString().replace(/[-:]/g, '').replace(/\..*$/, '')}.json`);
    await writeFile(file, `${JSON.stringify(result, null, 2)}\n`);
    log(`results: ${path.relative(ROOT, file)}`);
  } finally {
    await db.end();
    await stack.stop();
  }
}

main().then(
  () => process.exit(0),
  (e) => {
    process.stderr.write(`[bench-fork] ${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(1);
  },
);
