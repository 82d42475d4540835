/**
 * Naming Postgres' query texts after the generated statements (scripts/lib/scaletest-sql.mjs), as the scale test's
 * statement table (pg_stat_statements, whole texts) and its timeline's "pg conns by last statement" (pg_stat_activity,
 * texts cut at track_activity_query_size - 1 bytes) do. The texts are the real ones, from sql/generated.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadGeneratedStatements, nameOf, statementNames } from '../../scripts/lib/scaletest-sql.mjs';
import { ROOT, startScratchPostgres } from '../../scripts/lib/scratch-db.mjs';

const generated = loadGeneratedStatements(ROOT);
const names = statementNames(generated);
/** pg_stat_activity's default: track_activity_query_size 1024, less the terminating zero. */
const ACTIVITY_BYTES = 1023;

/** The first `bytes` bytes of a text, cut at a character boundary as Postgres cuts it (pg_mbcliplen). */
function cut(text: string, bytes: number): string {
  const b = Buffer.from(text, 'utf8');
  let n = Math.min(bytes, b.length);
  while (n > 0 && ((b[n] ?? 0) & 0xc0) === 0x80) n -= 1;
  return b.subarray(0, n).toString('utf8');
}

describe('nameOf', () => {
  it('names every generated statement by its @name', () => {
    for (const g of generated) expect(nameOf(names, g.sql).name.split('/'), g.name).toContain(g.name);
  });

  it('names a text cut as pg_stat_activity cuts it by the statement it is the start of, a leading comment too', () => {
    const long = generated.filter((g) => Buffer.byteLength(g.sql) > ACTIVITY_BYTES);
    // InsertChatMessages, the hottest write, opens with over 1 kB of comment: its cut text has no SQL left once
    // comments are dropped (it was named InsertWorkspaceAgent, the first statement read, whose key it "started").
    expect(long.map((g) => g.name)).toContain('InsertChatMessages');
    const insert = cut(generated.find((g) => g.name === 'InsertChatMessages')?.sql ?? '', ACTIVITY_BYTES);
    expect(insert.replace(/--[^\n]*/g, '').trim().length).toBeLessThan(60);
    for (const g of long) expect(nameOf(names, cut(g.sql, ACTIVITY_BYTES)), g.name).toEqual({ name: g.name, known: true });
  });

  it('does not give a name to a long text that starts no generated statement', () => {
    const comment = `-- ${'a comment that goes on '.repeat(60)}\nSELECT 1`;
    expect(nameOf(names, cut(comment, ACTIVITY_BYTES)).known).toBe(false);
    const select = `SELECT ${Array.from({ length: 300 }, (_, i) => `c${i}`).join(', ')} FROM chats`;
    expect(nameOf(names, cut(select, ACTIVITY_BYTES)).known).toBe(false);
    expect(nameOf(names, 'SELECT 1').known).toBe(false);
    expect(nameOf(names, 'BEGIN')).toEqual({ name: 'BEGIN', known: true });
  });
});

describe('nameOf with a real pg_stat_activity', () => {
  let server: Awaited<ReturnType<typeof startScratchPostgres>>;
  beforeAll(async () => {
    server = await startScratchPostgres('scaletest-sql-test');
  });
  afterAll(async () => {
    await server.stop();
  });

  it("names a connection whose last statement was InsertChatMessages by it, from Postgres' own cut text", async () => {
    const insert = generated.find((g) => g.name === 'InsertChatMessages');
    const app = new pg.Client(server.url);
    const observer = new pg.Client(server.url);
    await app.connect();
    await observer.connect();
    try {
      const pid = Number((await app.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]?.pid);
      // Sent as the application sends it; it fails here (no schema, no values), but Postgres records its text first.
      await expect(app.query(insert?.sql ?? '')).rejects.toThrow();
      const r = await observer.query<{ query: string }>('SELECT query FROM pg_stat_activity WHERE pid = $1', [pid]);
      const seen = r.rows[0]?.query ?? '';
      expect(Buffer.byteLength(seen)).toBeLessThan(Buffer.byteLength(insert?.sql ?? ''));
      expect(nameOf(names, seen)).toEqual({ name: 'InsertChatMessages', known: true });
    } finally {
      await app.end();
      await observer.end();
    }
  });
});
