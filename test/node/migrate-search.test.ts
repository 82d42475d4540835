/**
 * The runner's online part (NNNNNN_name.online.sql: statements outside a transaction) and migration 000013_search
 * on a database that already has messages: seed, migrate, search. Real (scratch) Postgres.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appliedVersions, loadMigrations, migrateDown, migrateUp, splitOnline, type Migration } from '../../scripts/lib/migrate.mjs';
import { ROOT, startScratchPostgres } from '../../scripts/lib/scratch-db.mjs';
import { loadGeneratedStatements } from '../../scripts/lib/scaletest-sql.mjs';

const VERSION = 13;
let server: Awaited<ReturnType<typeof startScratchPostgres>>;
let dbCount = 0;
const clients: pg.Client[] = [];
let dir: string;

beforeAll(async () => {
  server = await startScratchPostgres('migrate-search-test');
  dir = await mkdtemp(path.join(os.tmpdir(), 'chatd-online-'));
});

afterAll(async () => {
  await Promise.all(clients.map((c) => c.end().catch(() => undefined)));
  await server.stop();
  await rm(dir, { recursive: true, force: true });
});

async function freshDb(): Promise<pg.Client> {
  const name = `migrate_search_t${++dbCount}`;
  const admin = new pg.Client(server.url);
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const c = new pg.Client(server.urlFor(name));
  await c.connect();
  clients.push(c);
  return c;
}

describe('the online part of a migration', () => {
  it('is read from NNNNNN_name.online.sql, split on its separator lines, comment-only pieces dropped', async () => {
    const d = path.join(dir, 'folder');
    await mkdir(d);
    await writeFile(path.join(d, '000001_a.up.sql'), 'CREATE TABLE a (id int);');
    await writeFile(path.join(d, '000001_a.down.sql'), 'DROP TABLE a;');
    await writeFile(
      path.join(d, '000001_a.online.sql'),
      '-- first\nDO $$ BEGIN\n  COMMIT;\nEND $$;\n-- online statement --\n-- just a comment\n-- online statement --\nCREATE INDEX CONCURRENTLY a_id ON a (id);\n',
    );
    const [m] = await loadMigrations(d);
    expect(m?.online).toEqual(['-- first\nDO $$ BEGIN\n  COMMIT;\nEND $$;', 'CREATE INDEX CONCURRENTLY a_id ON a (id);']);
    expect(splitOnline('-- only a comment\n')).toEqual([]);
    await writeFile(path.join(d, '000001_a.online.sql'), '-- nothing\n');
    await expect(loadMigrations(d)).rejects.toThrow('000001_a.online.sql: an online part needs at least one statement');
  });

  it('runs outside a transaction after the up part, and records the version only when every statement succeeded', async () => {
    const db = await freshDb();
    const failing: Migration[] = [
      {
        version: 1,
        name: 'online',
        up: 'CREATE TABLE IF NOT EXISTS t (id int); INSERT INTO t SELECT 1 WHERE NOT EXISTS (SELECT 1 FROM t)',
        down: 'DROP TABLE t',
        online: ['CREATE INDEX CONCURRENTLY IF NOT EXISTS t_id ON t (id)', 'SELECT 1 / (SELECT count(*) - 1 FROM t)'],
      },
    ];
    await expect(migrateUp(db, { migrations: failing })).rejects.toThrow(
      'migration 1_online failed in its online statement 2: division by zero (run it again)',
    );
    // The up part and the first statement stay; the version is not recorded, so the next run does it all again.
    expect(await appliedVersions(db)).toEqual([]);
    expect((await db.query(`SELECT indexname FROM pg_indexes WHERE tablename = 't'`)).rows).toEqual([{ indexname: 't_id' }]);
    await db.query('INSERT INTO t VALUES (2)');
    expect(await migrateUp(db, { migrations: failing })).toEqual([1]);
    expect(await appliedVersions(db)).toEqual([1]);
    expect(await migrateDown(db, { migrations: failing })).toBe(1);
  });
});

describe(`migration ${VERSION} (search)`, () => {
  it('backfills the vectors of messages already stored, builds the index, and search finds them; down keeps every message', async () => {
    const migrations = await loadMigrations();
    expect(migrations.find((m) => m.version === VERSION)?.name).toBe('search');
    const db = await freshDb();
    await migrateUp(db, { migrations, target: VERSION - 1 });
    const one = async (sql: string, params: unknown[] = []) => String((await db.query<{ id: string }>(sql, params)).rows[0]?.id);
    const user = await one(`INSERT INTO users (email, username, hashed_password) VALUES ('u', 'u', 'x') RETURNING id`);
    const other = await one(`INSERT INTO users (email, username, hashed_password) VALUES ('v', 'v', 'x') RETURNING id`);
    const chat = await one(`INSERT INTO chats (owner_id, title) VALUES ($1, 'old chat') RETURNING id`, [user]);
    const theirs = await one(`INSERT INTO chats (owner_id, title) VALUES ($1, 'theirs') RETURNING id`, [other]);
    const text = (t: string) => JSON.stringify([{ type: 'text', text: t }]);
    // More than one backfill batch (5,000 ids): 12,000 messages, one in a thousand says "needle".
    await db.query(
      `INSERT INTO chat_messages (chat_id, role, content, deleted)
       SELECT CASE WHEN g % 2 = 0 THEN $1::uuid ELSE $2::uuid END,
              CASE WHEN g % 3 = 0 THEN 'tool' WHEN g % 3 = 1 THEN 'user' ELSE 'assistant' END::chat_message_role,
              jsonb_build_array(jsonb_build_object('type', 'text', 'text', CASE WHEN g % 1000 = 1 THEN 'the needle ' || g || ' here' ELSE 'hay ' || g END)),
              g = 4001
       FROM generate_series(1, 12000) g`,
      [chat, theirs],
    );
    const before = (await db.query('SELECT id, chat_id, role, content, deleted FROM chat_messages ORDER BY id')).rows;

    expect(await migrateUp(db, { migrations, target: VERSION })).toEqual([VERSION]);
    const counts = await db.query(
      `SELECT role, count(*)::int AS n, count(search_tsv)::int AS with_vector FROM chat_messages GROUP BY role ORDER BY role`,
    );
    expect(counts.rows).toEqual([
      { role: 'user', n: 4000, with_vector: 4000 },
      { role: 'assistant', n: 4000, with_vector: 4000 },
      { role: 'tool', n: 4000, with_vector: 0 },
    ]);
    const index = await db.query(
      `SELECT i.indisvalid AS valid, pg_get_indexdef(i.indexrelid) AS def FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
       WHERE c.relname = 'chat_messages_search_tsv'`,
    );
    expect(index.rows).toEqual([
      { valid: true, def: 'CREATE INDEX chat_messages_search_tsv ON public.chat_messages USING gin (search_tsv) WHERE (search_tsv IS NOT NULL)' },
    ]);

    // The API's statement, on the schema it is written for (the later migrations: the read rule's view chat_readers):
    // g = 1, 1001, ..., 11001 say "needle"; odd g are the other user's; g = 4001 was edited away.
    const latest = Math.max(...migrations.map((m) => m.version));
    await migrateUp(db, { migrations });
    // 000020's online part marked the stored vectors for the covering index (all short here) and built both indexes.
    const covered = await db.query(
      `SELECT count(*) FILTER (WHERE search_covered)::int AS covered,
              count(*) FILTER (WHERE search_tsv IS NOT NULL AND search_covered IS NOT TRUE)::int AS uncovered,
              count(*) FILTER (WHERE search_tsv IS NULL AND search_covered IS NOT NULL)::int AS marked_without_vector
       FROM chat_messages`,
    );
    expect(covered.rows).toEqual([{ covered: 8000, uncovered: 0, marked_without_vector: 0 }]);
    const coverIndexes = await db.query(
      `SELECT c.relname AS name, i.indisvalid AS valid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
       WHERE c.relname IN ('chat_messages_search_cover', 'chat_messages_search_uncovered') ORDER BY c.relname`,
    );
    expect(coverIndexes.rows).toEqual([
      { name: 'chat_messages_search_cover', valid: true },
      { name: 'chat_messages_search_uncovered', valid: true },
    ]);
    const search = loadGeneratedStatements(ROOT).find((s) => s.name === 'SearchMessages');
    if (!search) throw new Error('no SearchMessages');
    const byName: Record<string, unknown> = { user_id: other, q: 'needle', limit: 20, offset: 0 };
    // (The generated text keeps pgtyped's non-null marks in the column names.)
    const found = await db.query<{ 'snippet!': string }>(search.sql, search.params.map((p) => byName[p]));
    const expectedG = [1, 1001, 2001, 3001, 5001, 6001, 7001, 8001, 9001, 10001, 11001].filter((g) => g % 3 !== 0);
    expect(found.rows.map((r) => r['snippet!']).sort()).toEqual(expectedG.map((g) => `the \uE001needle\uE002 ${g} here`).sort());
    byName.user_id = user;
    expect((await db.query(search.sql, search.params.map((p) => byName[p]))).rows).toEqual([]);

    // A message inserted now gets its vector from the trigger.
    const fresh = await one(`INSERT INTO chat_messages (chat_id, role, content) VALUES ($1, 'user', $2) RETURNING id`, [chat, text('Crème brûlée')]);
    expect((await db.query(`SELECT search_tsv::text AS v FROM chat_messages WHERE id = $1`, [fresh])).rows).toEqual([{ v: "'brulee':2 'creme':1" }]);

    // Down (the later migrations first, then this one): the column goes, every message stays as it was.
    for (let v = latest; v >= VERSION; v -= 1) expect(await migrateDown(db, { migrations })).toBe(v);
    await db.query('DELETE FROM chat_messages WHERE id = $1', [fresh]);
    expect((await db.query('SELECT id, chat_id, role, content, deleted FROM chat_messages ORDER BY id')).rows).toEqual(before);
    expect((await db.query(`SELECT column_name FROM information_schema.columns WHERE table_name = 'chat_messages' AND column_name = 'search_tsv'`)).rows).toEqual([]);
  });
});
