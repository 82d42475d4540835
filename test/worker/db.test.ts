/**
 * The Durable Objects' connections run statements with parameters as named prepared statements: parsed and planned
 * once per connection. A table changed under one (a migration) is prepared again, once, on a fresh connection.
 */
import { env } from 'cloudflare:workers';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { dbSettings } from '../../functions/env';
import { Db } from '../../functions/core/db';
import { testDb } from './helpers';

describe('prepared statements', () => {
  it('a long-lived connection prepares a statement once and reuses it; a request connection prepares none', async () => {
    const durable = new Db(dbSettings(env, { durable: true }));
    const request = testDb();
    const table = `prep_${crypto.randomUUID().replaceAll('-', '')}`;
    await request.query(`CREATE TABLE ${table} (a int)`);
    try {
      for (const db of [durable, request]) {
        for (let i = 0; i < 3; i++) await db.query(`INSERT INTO ${table} (a) VALUES ($1)`, [i]);
      }
      const prepared = async (db: Db) =>
        z
          .array(z.object({ statement: z.string() }))
          .parse((await db.query('SELECT statement FROM pg_prepared_statements', [])).rows)
          .filter((r) => r.statement.includes(table));
      expect(await prepared(durable)).toHaveLength(1);
      expect(await prepared(request)).toHaveLength(0);

      // The table changes under the prepared SELECT *: the next call prepares it again and sees the new column.
      const select = `SELECT * FROM ${table} WHERE a = $1 LIMIT 1`;
      expect((await durable.query(select, [1])).rows).toEqual([{ a: 1 }]);
      await request.query(`ALTER TABLE ${table} ADD COLUMN b text DEFAULT 'x'`);
      expect((await durable.query(select, [1])).rows).toEqual([{ a: 1, b: 'x' }]);
    } finally {
      await request.query(`DROP TABLE ${table}`);
      await durable.close();
      await request.close();
    }
  });
});
