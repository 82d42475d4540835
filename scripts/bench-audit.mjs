// @ts-check
/**
 * `npm run bench:audit`: the owners' audit query (ListAuditEvents, the exact SQL of sql/generated/audit.queries.ts)
 * over --events events (default 1,000,000), straight against Postgres (no Worker).
 *
 * A scratch embedded Postgres gets the real migrations, then the events: 200 actors, the 29 actions in a skewed mix
 * (logins most), spread over the last 365 days. Then, for each filter shape, --runs queries (default 200), page of 50:
 * none, by action, by actor, by actor and action, by a 7-day window, a rare action, and page 20 of an action (offset
 * 950). Prints p50/p95/p99 per shape (client round trip on loopback); the goal is p50 < 50 ms for a filtered page.
 * Also times the cron's purge of one batch (5,000 events) past the retention.
 *
 * Then, unless --logins 0, the single sign-on login's time over --logins logins (default 30) against the whole
 * local stack and its local OpenID provider (scripts/lib/bench-login.mjs).
 *
 * Options: --events N, --runs N, --logins N.
 */
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { migrateUp } from './lib/migrate.mjs';
import { fmt, summarize, table } from './lib/scaletest-report.mjs';
import { loadGeneratedStatements } from './lib/scaletest-sql.mjs';
import { startScratchPostgres } from './lib/scratch-db.mjs';
import { benchLogin } from './lib/bench-login.mjs';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
/** @param {string} line */
const info = (line) => process.stderr.write(`[bench:audit] ${line}\n`);

const { values: a } = parseArgs({ options: { events: { type: 'string' }, runs: { type: 'string' }, logins: { type: 'string' } } });
const logins = Number(a.logins ?? 30);
const events = Number(a.events ?? 1_000_000);
const runs = Number(a.runs ?? 200);
const stmt = loadGeneratedStatements(ROOT).find((s) => s.name === 'ListAuditEvents');
const purge = loadGeneratedStatements(ROOT).find((s) => s.name === 'PurgeAuditEvents');
if (!stmt || !purge) throw new Error('ListAuditEvents or PurgeAuditEvents is not in sql/generated/audit.queries.ts');

const ACTIONS = ['user.login', 'user.login', 'user.login', 'user.login', 'user.logout', 'user.login_failed', 'key.created', 'group.member_added', 'settings.updated', 'oidc.updated'];

const server = await startScratchPostgres('bench-audit');
const admin = new pg.Client(server.url);
/** @type {pg.Client | null} */
let db = null;
try {
  await admin.connect();
  await admin.query('CREATE DATABASE chatd_bench_audit');
  db = new pg.Client(server.urlFor('chatd_bench_audit'));
  await db.connect();
  await migrateUp(db);
  info(`seeding ${events} events`);
  const t0 = performance.now();
  const actors = (await db.query('SELECT gen_random_uuid()::text AS id FROM generate_series(1, 200)')).rows.map((r) => String(r.id));
  await db.query(
    `INSERT INTO audit_events (at, actor_id, actor_email, action, target_type, target_id, ip, detail)
     SELECT now() - (random() * interval '365 days'),
            ($1::uuid[])[1 + (i % 200)], 'user' || (i % 200) || '@example.com',
            CASE WHEN i % 1000 = 0 THEN 'oidc.updated' ELSE ($2::text[])[1 + (i % 9)] END,
            'user', (i % 5000)::text, '10.0.' || (i % 250) || '.1', jsonb_build_object('method', 'password')
     FROM generate_series(1, $3::int) AS i`,
    [actors, ACTIONS.slice(0, 9), events],
  );
  await db.query('ANALYZE audit_events');
  info(`seeded in ${fmt((performance.now() - t0) / 1000)} s`);
  const week = new Date(Date.now() - 7 * 86_400_000);
  /** @type {[string, Record<string, unknown>][]} */
  const shapes = [
    ['no filter', {}],
    ['action', { action: 'user.logout' }],
    ['actor', { actor_id: actors[3] }],
    ['actor + action', { actor_id: actors[5], action: 'user.login' }],
    ['last 7 days', { from: week }],
    ['rare action', { action: 'oidc.updated' }],
    ['action, page 20', { action: 'user.login', offset: 950 }],
  ];
  const rows = [];
  for (const [name, f] of shapes) {
    /** @type {Record<string, unknown>} */
    const p = { from: null, to: null, actor_id: null, action: null, limit: 50, offset: 0, ...f };
    const values = stmt.params.map((k) => p[k] ?? null);
    for (let i = 0; i < 10; i++) await db.query(stmt.sql, values);
    const lat = [];
    let n = 0;
    for (let i = 0; i < runs; i++) {
      const t = performance.now();
      n = (await db.query(stmt.sql, values)).rowCount ?? 0;
      lat.push(performance.now() - t);
    }
    const s = summarize(lat);
    rows.push([name, String(n), fmt(s.p50), fmt(s.p95), fmt(s.p99)]);
  }
  process.stdout.write(`\naudit query over ${events.toLocaleString('en')} events, page of 50, ${runs} runs each (ms)\n`);
  process.stdout.write(`${table(['filter', 'rows', 'p50', 'p95', 'p99'], rows)}\n`);
  const t = performance.now();
  const gone = await db.query(purge.sql, purge.params.map((k) => (k === 'days' ? 180 : 5000)));
  process.stdout.write(`purge: one batch of ${Object.values(gone.rows[0] ?? {})[0]} events older than 180 days in ${fmt(performance.now() - t)} ms\n`);
} finally {
  await db?.end().catch(() => undefined);
  await admin.end().catch(() => undefined);
  await server.stop();
}

if (logins > 0) {
  info(`starting the local stack for ${logins} SSO logins`);
  const r = await benchLogin(ROOT, logins);
  const t = summarize(r.total);
  const c = summarize(r.callback);
  process.stdout.write(`\nSSO login through the local provider, ${logins} logins (ms)\n`);
  process.stdout.write(`${table(['part', 'p50', 'p95', 'p99'], [['whole login', fmt(t.p50), fmt(t.p95), fmt(t.p99)], ['callback', fmt(c.p50), fmt(c.p95), fmt(c.p99)]])}\n`);
}
