/**
 * The insights rollup: rolled-up days plus today's raw calls answer what the raw query answered (sums exact,
 * p50/p95 within the documented histogram error), the rollup is idempotent, and the cron rolls up and purges.
 * Isolated (vitest.config.ts): it rolls up the deployment's days and runs the cron.
 */
import { env } from 'cloudflare:workers';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { runScheduled } from '../../functions/scheduled';
import { rollupInsights } from '../../functions/services/operations';
import { call, makeOwner, makeUser, testDb } from './helpers';

const DAY_MS = 86_400_000;
/** The documented bound: a bucket spans 2^(1/8) (docs/performance.md). */
const BUCKET_ERROR = 2 ** (1 / 8) - 1;
const day = (offset: number) => new Date(Date.now() + offset * DAY_MS).toISOString().slice(0, 10);

const Row = z.object({
  key: z.string(),
  turns: z.number(),
  errors: z.record(z.string(), z.number()),
  first_token_ms: z.object({ p50: z.number().nullable(), p95: z.number().nullable() }),
  total_ms: z.object({ p50: z.number(), p95: z.number() }),
  input_tokens: z.number(),
  output_tokens: z.number(),
  cost: z.string(),
});
const Body = z.object({ rows: z.array(Row) });

async function insights(token: string, query: string) {
  const r = await call('GET', `/api/v2/insights?${query}`, { token });
  expect(r.status, r.text).toBe(200);
  return Body.parse(r.body).rows;
}

/** A chat of its own and `n` calls of `model` on `on` (a day: noon UTC; null: now), with varying figures. */
async function seedCalls(model: string, userId: string, chatId: string, on: string | null, n: number, base: number) {
  const db = testDb();
  await db.query(
    `INSERT INTO chat_turns (id, chat_id, turn_id, user_id, provider, model, outcome, error_kind, queue_ms, first_token_ms,
                             total_ms, input_tokens, output_tokens, cost_micros, created_at)
     SELECT gen_random_uuid(), $1::uuid, 't' || i, $2::uuid, 'rollup-test', $3,
            CASE WHEN i % 20 = 0 THEN 'error' ELSE 'answered' END,
            CASE WHEN i % 40 = 0 THEN 'timeout' WHEN i % 20 = 0 THEN 'rate_limit' END,
            1, CASE WHEN i % 20 = 0 THEN NULL ELSE 100 + i * 3 END, $5::int + i * 10, i, 2 * i,
            CASE WHEN i % 2 = 0 THEN i * 3 END,
            COALESCE($4::date::timestamp AT TIME ZONE 'UTC' + interval '12 hours', now())
     FROM generate_series(0, $6::int - 1) i`,
    [chatId, userId, model, on, base, n],
  );
  await db.close();
}

async function ownChat(userId: string): Promise<string> {
  const db = testDb();
  const r = await db.query(`INSERT INTO chats (owner_id, title) VALUES ($1, 'rollup') RETURNING id::text`, [userId]);
  await db.close();
  return z.object({ id: z.string() }).parse(r.rows[0]).id;
}

async function dailyRows(): Promise<string[]> {
  const db = testDb();
  const r = await db.query(`SELECT d::text AS row FROM chat_turns_daily d ORDER BY day, model, user_id, model_config_id`);
  await db.close();
  return z.array(z.object({ row: z.string() })).parse(r.rows).map((x) => x.row);
}

const near = (approx: number | null, exact: number | null) => {
  expect(approx === null, `${approx} vs ${exact}`).toBe(exact === null);
  if (approx === null || exact === null) return;
  // The bucket's width, plus the gap to percentile_cont's next value (10 ms here) and the API's rounding to 1 ms.
  expect(Math.abs(approx - exact), `${approx} vs ${exact}`).toBeLessThanOrEqual(BUCKET_ERROR * exact + 11);
};

describe('insights rollup', () => {
  it('rolled-up days and today raw answer as the raw query did; idempotent; the cron rolls up and purges', async () => {
    const owner = await makeOwner();
    const u = await makeUser();
    const model = `rollup-${crypto.randomUUID().slice(0, 8)}`;
    const chat = await ownChat(u.user.id);
    await seedCalls(model, u.user.id, chat, day(-3), 200, 1000);
    await seedCalls(model, u.user.id, chat, day(-2), 200, 3000);
    await seedCalls(model, u.user.id, chat, null, 60, 500);
    const window = `from=${day(-3)}&to=${day(0)}`;

    // Nothing rolled up yet: exact.
    const rawModel = (await insights(owner.token, `group_by=model&${window}`)).filter((r) => r.key === model);
    const rawDay = await insights(owner.token, `group_by=day&${window}`);
    expect(rawModel).toHaveLength(1);
    expect(rawModel[0]?.turns).toBe(460);

    const db = testDb();
    try {
      const first = await rollupInsights(db, new Date());
      expect(first.days).toEqual([day(-3), day(-2), day(-1)]);
      const rows = await dailyRows();
      expect(rows.length).toBeGreaterThanOrEqual(2);
      // The histograms (numbers whose digits are the buckets, migration 000021) hold exactly each day's calls per bucket.
      const buckets = await db.query(
        `SELECT d.day::text AS day, m.name,
                (SELECT jsonb_object_agg(h.bucket, h.calls) FROM insights_hist_buckets(CASE m.name WHEN 'first' THEN d.first_token_hist ELSE d.total_hist END) h WHERE h.calls > 0) AS rolled,
                (SELECT jsonb_object_agg(b, n) FROM (
                    SELECT insights_bucket(CASE m.name WHEN 'first' THEN t.first_token_ms ELSE t.total_ms END) AS b, count(*) AS n
                    FROM chat_turns t
                    WHERE t.model = d.model AND t.created_at >= d.day::timestamp AT TIME ZONE 'UTC' AND t.created_at < (d.day + 1)::timestamp AT TIME ZONE 'UTC'
                        AND (CASE m.name WHEN 'first' THEN t.first_token_ms ELSE t.total_ms END) IS NOT NULL
                    GROUP BY 1) x) AS raw
         FROM chat_turns_daily d, (VALUES ('first'), ('total')) m (name)
         WHERE d.model = $1`,
        [model],
      );
      expect(buckets.rows).toHaveLength(4);
      for (const r of z.array(z.object({ day: z.string(), name: z.string(), rolled: z.unknown(), raw: z.unknown() })).parse(buckets.rows)) {
        expect(r.rolled, `${r.day} ${r.name}`).toEqual(r.raw);
        expect(r.raw).not.toBeNull();
      }
      // Run again: nothing new, the same rows.
      expect((await rollupInsights(db, new Date())).days).toEqual([]);
      expect(await dailyRows()).toEqual(rows);

      const rolled = (await insights(owner.token, `group_by=model&${window}`)).filter((r) => r.key === model);
      const [a, e] = [rolled[0], rawModel[0]];
      if (!a || !e) throw new Error('missing rows');
      expect({ ...a, first_token_ms: null, total_ms: null }).toEqual({ ...e, first_token_ms: null, total_ms: null });
      expect(a.errors).toEqual({ timeout: 12, rate_limit: 11 });
      near(a.first_token_ms.p50, e.first_token_ms.p50);
      near(a.first_token_ms.p95, e.first_token_ms.p95);
      near(a.total_ms.p50, e.total_ms.p50);
      near(a.total_ms.p95, e.total_ms.p95);
      // Per day: the same sums for every day (rolled-up ones and today).
      const byDay = await insights(owner.token, `group_by=day&${window}`);
      const sums = (rs: z.infer<typeof Row>[]) => rs.map((r) => [r.key, r.turns, r.errors, r.input_tokens, r.output_tokens, r.cost]);
      expect(sums(byDay)).toEqual(sums(rawDay));
      for (const [i, r] of byDay.entries()) near(r.total_ms.p50, rawDay[i]?.total_ms.p50 ?? null);

      // An older call: the cron rolls up its day and the empty one after it.
      const old = await ownChat(u.user.id);
      await seedCalls(model, u.user.id, old, day(-5), 10, 700);
      const report = await runScheduled(env, new Date());
      expect(report.jobs.insights_rollup).toMatchObject({ ok: true, detail: 'rolled up 2 days, dropped 0' });
      const five = (await insights(owner.token, `group_by=model&from=${day(-5)}&to=${day(-5)}`)).find((r) => r.key === model);
      expect(five?.turns).toBe(10);

      // Its chat purged (chat_turns go with it): the next run drops the two days before the oldest call left.
      await db.query('DELETE FROM chats WHERE id = $1', [old]);
      const after = await runScheduled(env, new Date());
      expect(after.jobs.insights_rollup).toMatchObject({ ok: true, detail: 'rolled up 0 days, dropped 2' });
      expect((await insights(owner.token, `group_by=model&from=${day(-5)}&to=${day(-5)}`)).find((r) => r.key === model)).toBeUndefined();
    } finally {
      await db.close();
    }
  });
});
