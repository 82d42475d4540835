/**
 * The migration runner (scripts/lib/migrate.mjs) and its CLI (scripts/migrate.mjs) against a real Postgres:
 * one scratch server for the file, one fresh database per test.
 */
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { appliedVersions, loadMigrations, migrateDown, migrateUp, type Migration } from '../../scripts/lib/migrate.mjs';
import { ROOT, startScratchPostgres } from '../../scripts/lib/scratch-db.mjs';

type Server = Awaited<ReturnType<typeof startScratchPostgres>>;

let server: Server;
let dbCount = 0;
const clients: pg.Client[] = [];

beforeAll(async () => {
  server = await startScratchPostgres('migrate-test');
});

afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.end().catch(() => undefined)));
});

afterAll(async () => {
  await server.stop();
});

/** A new empty database on the scratch server; returns its URL. */
async function freshDatabase(): Promise<string> {
  const name = `migrate_t${++dbCount}`;
  const admin = await connect(server.url);
  await admin.query(`CREATE DATABASE ${name}`);
  return server.urlFor(name);
}

async function connect(url: string): Promise<pg.Client> {
  const c = new pg.Client(url);
  await c.connect();
  clients.push(c);
  return c;
}

interface Schema {
  tables: string[];
  columns: string[];
  indexes: string[];
  constraints: string[];
  types: string[];
}

/** What the migrations can create in `public`, as comparable lists. */
async function schema(db: pg.Client): Promise<Schema> {
  const list = async (sql: string) => (await db.query<{ v: string }>(sql)).rows.map((r) => r.v);
  return {
    tables: await list(`SELECT table_name || ' ' || table_type AS v FROM information_schema.tables
      WHERE table_schema = 'public' ORDER BY table_name`),
    columns: await list(`SELECT concat_ws(' ', table_name, column_name, data_type, udt_name, is_nullable, column_default) AS v
      FROM information_schema.columns WHERE table_schema = 'public' ORDER BY table_name, ordinal_position`),
    indexes: await list(`SELECT indexdef AS v FROM pg_indexes WHERE schemaname = 'public' ORDER BY indexname`),
    constraints: await list(`SELECT concat_ws(' ', table_name, constraint_name, constraint_type) AS v
      FROM information_schema.table_constraints WHERE constraint_schema = 'public' AND constraint_type <> 'CHECK'
      ORDER BY table_name, constraint_name`),
    types: await list(`SELECT typname || ' ' || typtype::text AS v FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
      WHERE n.nspname = 'public' AND t.typtype IN ('e', 'd') ORDER BY typname`),
  };
}

const onlySchemaMigrations = (s: Schema) => ({
  tables: s.tables.filter((t) => !t.startsWith('schema_migrations ')),
  indexes: s.indexes.filter((i) => !/ ON public\.schema_migrations /.test(i)),
  types: s.types,
});

describe('migrations against a real Postgres', () => {
  it('go up one by one, down one by one to zero, and up again to the same schema', async () => {
    const migrations = await loadMigrations();
    expect(migrations.length).toBeGreaterThan(0);
    const versions = migrations.map((m) => m.version);
    const db = await connect(await freshDatabase());

    expect(await appliedVersions(db)).toEqual([]);
    const empty = await schema(db);
    expect(empty.tables).toEqual(['schema_migrations BASE TABLE']);

    // Up, one version at a time, remembering the schema after each.
    const after: Schema[] = [empty];
    for (const v of versions) {
      expect(await migrateUp(db, { migrations, target: v })).toEqual([v]);
      expect(await appliedVersions(db)).toEqual(versions.filter((x) => x <= v));
      after.push(await schema(db));
    }
    const full = await schema(db);
    expect(full.tables.length).toBeGreaterThan(1);
    expect(await migrateUp(db, { migrations })).toEqual([]); // nothing pending

    // Down, one at a time: each step restores exactly the schema before that version.
    for (let i = versions.length - 1; i >= 0; i--) {
      expect(await migrateDown(db, { migrations })).toBe(versions[i]);
      expect(await appliedVersions(db)).toEqual(versions.slice(0, i));
      expect(await schema(db)).toEqual(after[i]);
    }
    expect(await migrateDown(db, { migrations })).toBeNull();
    const zero = await schema(db);
    expect(onlySchemaMigrations(zero)).toEqual({ tables: [], indexes: [], types: [] });
    expect(zero.tables).toEqual(['schema_migrations BASE TABLE']);

    // And up again, all at once: the same tables, columns, indexes, constraints and types as the first time.
    expect(await migrateUp(db, { migrations })).toEqual(versions);
    expect(await appliedVersions(db)).toEqual(versions);
    expect(await schema(db)).toEqual(full);
  });

  it('000009 (credentials) down keeps users and keys, and leaves no key to a suspended user', async () => {
    const migrations = await loadMigrations();
    const db = await connect(await freshDatabase());
    await migrateUp(db, { migrations });
    const user = async (name: string, suspended: boolean) =>
      (
        await db.query<{ id: string }>(
          `INSERT INTO users (email, username, hashed_password, suspended_at) VALUES ($1, $1, 'x', $2) RETURNING id`,
          [name, suspended ? new Date() : null],
        )
      ).rows[0]?.id;
    const [active, suspended] = [await user('active', false), await user('suspended', true)];
    for (const [id, owner] of [['aaaaaaaaa1', active], ['aaaaaaaaa2', suspended]]) {
      await db.query(`INSERT INTO api_keys (id, user_id, kind, hashed_secret, expires_at, last_used_at) VALUES ($1, $2, 'api_key', 'h', now() + interval '1 day', now())`, [id, owner]);
    }
    while (((await appliedVersions(db)).at(-1) ?? 0) >= 9) await migrateDown(db, { migrations });
    expect((await db.query('SELECT username FROM users ORDER BY username')).rows).toEqual([{ username: 'active' }, { username: 'suspended' }]);
    expect((await db.query('SELECT id, user_id FROM api_keys')).rows).toEqual([{ id: 'aaaaaaaaa1', user_id: active }]);
    await migrateUp(db, { migrations });
    expect((await db.query('SELECT count(*)::int AS n FROM users WHERE suspended_at IS NOT NULL')).rows).toEqual([{ n: 0 }]);
  });

  it('000011 (usage) backfills the ledger from the answers already stored, and down keeps every message and its tokens', async () => {
    const migrations = await loadMigrations();
    const db = await connect(await freshDatabase());
    await migrateUp(db, { migrations });
    while (((await appliedVersions(db)).at(-1) ?? 0) >= 11) await migrateDown(db, { migrations });
    const one = async (sql: string, params: unknown[] = []) => (await db.query<{ id: string }>(sql, params)).rows[0]?.id;
    const user = await one(`INSERT INTO users (email, username, hashed_password) VALUES ('u', 'u', 'x') RETURNING id`);
    await db.query(`INSERT INTO chat_providers (provider) VALUES ('openai')`);
    const cfg = await one(`INSERT INTO chat_model_configs (provider, model, context_limit) VALUES ('openai', 'm', 10) RETURNING id`);
    const chat = await one(`INSERT INTO chats (owner_id) VALUES ($1) RETURNING id`, [user]);
    const message = (role: string, tokens: number | null, at: string) =>
      db.query(
        `INSERT INTO chat_messages (chat_id, role, content, model_config_id, input_tokens, output_tokens, created_at) VALUES ($1, $2::chat_message_role, '[]', $3, $4, $4, $5)`,
        [chat, role, cfg, tokens, at],
      );
    await message('user', null, '2026-11-30T23:00:00Z');
    await message('assistant', 10, '2026-11-30T23:30:00Z');
    await message('assistant', 5, '2026-12-01T00:30:00Z');
    await message('assistant', null, '2026-12-01T01:00:00Z');
    await migrateUp(db, { migrations });
    const expected = [
      { day: '2026-11-30', turns: 1, unpriced_turns: 1, i: 10, c: 0 },
      { day: '2026-12-01', turns: 2, unpriced_turns: 2, i: 5, c: 0 },
    ];
    const sums = 'day::text, turns, unpriced_turns, input_tokens::int AS i, cost_micros::int AS c';
    expect((await db.query(`SELECT ${sums} FROM usage_by_chat WHERE chat_id = $1 ORDER BY day`, [chat])).rows).toEqual(expected);
    expect((await db.query(`SELECT ${sums} FROM usage_daily WHERE user_id = $1 AND model_config_id = $2 ORDER BY day`, [user, cfg])).rows).toEqual(expected);
    await migrateDown(db, { migrations });
    expect((await db.query('SELECT role, input_tokens::int AS i FROM chat_messages ORDER BY id')).rows).toEqual([
      { role: 'user', i: null },
      { role: 'assistant', i: 10 },
      { role: 'assistant', i: 5 },
      { role: 'assistant', i: null },
    ]);
  });

  it('000021 (insights histograms as numbers) converts the rolled-up rows in place and back, the same counts', async () => {
    const migrations = await loadMigrations();
    const db = await connect(await freshDatabase());
    const version = 21;
    await migrateUp(db, { migrations, target: version - 1 });
    // 000018's int[]: subscript = bucket number. Bucket 0, a gap, the last bucket (193), a count at int's maximum.
    const rows = [
      { first: '[61:63]={2,0,1}', total: '[0:1]={5,7}' },
      { first: null, total: '[193:193]={2147483647}' },
      { first: '[62:62]={3}', total: '[2:4]={100,0,4}' },
    ];
    for (const [i, r] of rows.entries()) {
      await db.query(
        `INSERT INTO chat_turns_daily (day, provider, model, user_id, turns, input_tokens, output_tokens, cost_micros, first_token_hist, total_hist)
         VALUES ('2026-12-01'::date + $1::int, 'p', 'm', gen_random_uuid(), 1, 0, 0, 0, $2::int[], $3::int[])`,
        [i, r.first, r.total],
      );
    }
    await migrateUp(db, { migrations, target: version });
    const buckets = async (expr: string) =>
      (await db.query<{ v: string | null }>(`SELECT (SELECT string_agg(bucket || ':' || calls, ' ' ORDER BY bucket) FROM insights_hist_buckets(${expr})) AS v FROM chat_turns_daily ORDER BY day`)).rows.map((r) => r.v);
    expect(await buckets('first_token_hist')).toEqual(['61:2 62:0 63:1', null, '62:3']);
    expect(await buckets('total_hist')).toEqual(['0:5 1:7', '193:2147483647', '2:100 3:0 4:4']);
    // Added up, the numbers are the histogram of all the calls.
    const sum = async (col: string) =>
      (await db.query<{ v: string }>(`SELECT string_agg(bucket || ':' || calls, ' ' ORDER BY bucket) AS v FROM insights_hist_buckets((SELECT sum(${col}) FROM chat_turns_daily))`)).rows[0]?.v;
    expect(await sum('first_token_hist')).toEqual('61:2 62:3 63:1');
    expect(await sum('total_hist')).toMatch(/^0:5 1:7 2:100 3:0 4:4 5:0 /);
    expect(await sum('total_hist')).toMatch(/ 192:0 193:2147483647$/);
    await migrateDown(db, { migrations });
    expect((await db.query('SELECT first_token_hist::text AS first, total_hist::text AS total FROM chat_turns_daily ORDER BY day')).rows).toEqual(rows);
  });

  it('a second migrateUp running concurrently on another connection waits for the lock and applies nothing twice', async () => {
    const url = await freshDatabase();
    const [a, b, observer] = await Promise.all([connect(url), connect(url), connect(url)]);
    const slow: Migration[] = [
      { version: 1, name: 'slow_first', up: 'SELECT pg_sleep(0.4); CREATE TABLE conc_a (id int)', down: 'DROP TABLE conc_a' },
      { version: 2, name: 'second', up: 'CREATE TABLE conc_b (id int)', down: 'DROP TABLE conc_b' },
    ];
    const first = migrateUp(a, { migrations: slow });
    // Wait until the first runner is inside its first migration, then start the second one.
    await until(async () => (await observer.query(`SELECT 1 FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep(0.4)%'`)).rowCount === 1);
    const second = migrateUp(b, { migrations: slow });
    // The second blocks on the advisory lock rather than running anything.
    await until(async () => (await observer.query(`SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND NOT granted`)).rowCount === 1);
    const [ra, rb] = await Promise.all([first, second]);
    expect(ra).toEqual([1, 2]);
    expect(rb).toEqual([]);
    const rows = await observer.query<{ version: number }>('SELECT version FROM schema_migrations ORDER BY version');
    expect(rows.rows.map((r) => r.version)).toEqual([1, 2]);
  });

  it('the real migrations, run by two connections at once, are each applied exactly once', async () => {
    const migrations = await loadMigrations();
    const url = await freshDatabase();
    const [a, b] = await Promise.all([connect(url), connect(url)]);
    const [ra, rb] = await Promise.all([migrateUp(a, { migrations }), migrateUp(b, { migrations })]);
    expect([...ra, ...rb].sort((x, y) => x - y)).toEqual(migrations.map((m) => m.version));
    expect(ra.length === 0 || rb.length === 0).toBe(true);
    expect(await appliedVersions(a)).toEqual(migrations.map((m) => m.version));
  });
});

describe('loadMigrations', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'chatd-migrations-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  /** A fresh folder holding exactly these files. */
  async function folder(name: string, files: Record<string, string>): Promise<string> {
    const d = path.join(dir, name);
    await rm(d, { recursive: true, force: true });
    await mkdir(d);
    for (const [f, body] of Object.entries(files)) await writeFile(path.join(d, f), body);
    return d;
  }

  it('reads a well-formed folder in version order and ignores files that are not SQL', async () => {
    const d = await folder('good', {
      '000002_b.up.sql': 'CREATE TABLE b ();',
      '000002_b.down.sql': 'DROP TABLE b;',
      '000001_a.up.sql': 'CREATE TABLE a ();',
      '000001_a.down.sql': 'DROP TABLE a;',
      'README.md': 'notes',
    });
    const ms = await loadMigrations(d);
    expect(ms.map((m) => [m.version, m.name, m.up, m.down])).toEqual([
      [1, 'a', 'CREATE TABLE a ();', 'DROP TABLE a;'],
      [2, 'b', 'CREATE TABLE b ();', 'DROP TABLE b;'],
    ]);
  });

  it.each([
    ['1_short.up.sql'],
    ['000001_Upper.up.sql'],
    ['000001-dash.up.sql'],
    ['000001_a.sql'],
    ['000001_a.UP.sql'],
  ])('rejects the badly named file %s', async (bad) => {
    const d = await folder('bad-name', { '000001_a.up.sql': 'SELECT 1;', '000001_a.down.sql': 'SELECT 1;', [bad]: 'SELECT 1;' });
    await expect(loadMigrations(d)).rejects.toThrow(`migration file name not understood: ${bad}`);
  });

  it('rejects a migration without its down file', async () => {
    const d = await folder('no-down', {
      '000001_a.up.sql': 'SELECT 1;',
      '000001_a.down.sql': 'SELECT 1;',
      '000002_b.up.sql': 'SELECT 1;',
    });
    await expect(loadMigrations(d)).rejects.toThrow('migration 2 needs both .up.sql and .down.sql');
  });

  it('rejects a migration without its up file', async () => {
    const d = await folder('no-up', { '000001_a.down.sql': 'SELECT 1;' });
    await expect(loadMigrations(d)).rejects.toThrow('migration 1 needs both .up.sql and .down.sql');
  });

  it('rejects a gap in the numbering', async () => {
    const d = await folder('gap', {
      '000001_a.up.sql': 'SELECT 1;',
      '000001_a.down.sql': 'SELECT 1;',
      '000003_c.up.sql': 'SELECT 1;',
      '000003_c.down.sql': 'SELECT 1;',
    });
    await expect(loadMigrations(d)).rejects.toThrow('without gaps; found 3 at position 2');
  });

  it('rejects numbering that does not start at 1', async () => {
    const d = await folder('start', { '000002_b.up.sql': 'SELECT 1;', '000002_b.down.sql': 'SELECT 1;' });
    await expect(loadMigrations(d)).rejects.toThrow('without gaps; found 2 at position 1');
  });

  it('rejects one version with two names, and BEGIN/COMMIT inside a file', async () => {
    const twoNames = await folder('two-names', { '000001_a.up.sql': 'SELECT 1;', '000001_b.down.sql': 'SELECT 1;' });
    await expect(loadMigrations(twoNames)).rejects.toThrow('has two names');
    const tx = await folder('tx', { '000001_a.up.sql': 'BEGIN;\nSELECT 1;\nCOMMIT;', '000001_a.down.sql': 'SELECT 1;' });
    await expect(loadMigrations(tx)).rejects.toThrow('no BEGIN/COMMIT inside migrations');
  });
});

describe('scripts/migrate.mjs', () => {
  const run = async (args: string[], env: Record<string, string>) => {
    try {
      const r = await promisify(execFile)(process.execPath, [path.join(ROOT, 'scripts', 'migrate.mjs'), ...args], {
        cwd: ROOT,
        env: { ...process.env, ...env },
      });
      return { code: 0, stdout: r.stdout, stderr: r.stderr };
    } catch (e) {
      const x = e as { code?: number; stdout?: string; stderr?: string };
      return { code: typeof x.code === 'number' ? x.code : -1, stdout: x.stdout ?? '', stderr: x.stderr ?? '' };
    }
  };

  it('status, up, status, down, status on DATABASE_URL, never printing its password', async () => {
    const migrations = await loadMigrations();
    const url = new URL(await freshDatabase());
    url.password = 'hunter2-secret'; // trust auth ignores it; it must still never be printed
    const env = { DATABASE_URL: url.toString() };
    const names = migrations.map((m) => `${String(m.version).padStart(6, '0')}_${m.name}`);

    const s0 = await run(['status'], env);
    expect(s0.code).toBe(0);
    for (const n of names) expect(s0.stdout).toContain(`pending  ${n}`);
    expect(s0.stdout).toContain(`0 applied, ${names.length} pending`);

    const up = await run(['up'], env);
    expect(up.code).toBe(0);
    for (const n of names) expect(up.stdout).toContain(`applied ${n}`);
    const s1 = await run(['status'], env);
    expect(s1.stdout).toContain(`${names.length} applied, 0 pending`);
    const again = await run(['up'], env);
    expect(again.stdout).toContain('nothing to apply');

    const down = await run(['down'], env);
    expect(down.code).toBe(0);
    expect(down.stdout).toContain(`reverted ${names.at(-1)}`);
    const s2 = await run(['status'], env);
    expect(s2.stdout).toContain(`pending  ${names.at(-1)}`);
    expect(s2.stdout).toContain(`${names.length - 1} applied, 1 pending`);

    for (const r of [s0, up, s1, again, down, s2]) {
      expect(r.stdout + r.stderr).not.toContain('hunter2-secret');
      expect(r.stdout).toContain(':***@127.0.0.1');
    }
  });

  it('fails with exit code 1 and a clear message, without the password', async () => {
    const url = new URL(server.urlFor('no_such_database'));
    url.password = 'hunter2-secret';
    const r = await run(['up'], { DATABASE_URL: url.toString() });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/migrate up failed: cannot connect to postgres:\/\/postgres:\*\*\*@127\.0\.0\.1:\d+\/no_such_database: database "no_such_database" does not exist/);
    expect(r.stdout + r.stderr).not.toContain('hunter2-secret');

    const usage = await run(['sideways'], {});
    expect(usage.code).toBe(1);
    expect(usage.stderr).toContain('usage: node scripts/migrate.mjs up|down|status');
  });
});

async function until(cond: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}
