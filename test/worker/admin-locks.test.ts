/**
 * Concurrent admin writes on providers and model configs, raced for real on separate connections: every path
 * takes its locks in one order (LockChatModelWrites, provider row, config rows), so none deadlocks (40P01 → 500),
 * and the state after each race is consistent.
 */
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import type { Db } from '../../functions/core/db';
import { call, freshWorld, makeOwner } from './helpers';

const ITERATIONS = 25;
const Id = z.object({ id: z.uuid() });

async function world() {
  const w = await freshWorld();
  const owner = await makeOwner({ env: w.env });
  const req = (method: string, path: string, body?: unknown) => call(method, `/api/v2/chats${path}`, { token: owner.token, env: w.env, body });
  const created = async (path: string, body: unknown) => {
    const r = await req('POST', path, body);
    expect(r.status, r.text).toBe(201);
    return Id.parse(r.body).id;
  };
  /** Sends two requests at once; each must answer one of its statuses, and the state after them be consistent. */
  const race = async (a: [string, string, unknown?], aOk: number[], b: [string, string, unknown?], bOk: number[]) => {
    const [ra, rb] = await Promise.all([req(...a), req(...b)]);
    expect(aOk, ra.text).toContain(ra.status);
    expect(bOk, rb.text).toContain(rb.status);
    await assertConsistent(w.db);
  };
  return { ...w, created, race };
}

/** One live default while any live config exists, none among deleted rows, no live config without its provider. */
async function assertConsistent(db: Db) {
  const r = await db.query(
    `SELECT
       (SELECT count(*)::int FROM chat_model_configs WHERE NOT deleted) AS live,
       (SELECT count(*)::int FROM chat_model_configs WHERE NOT deleted AND is_default) AS defaults,
       (SELECT count(*)::int FROM chat_model_configs WHERE deleted AND is_default) AS deleted_defaults,
       (SELECT count(*)::int FROM chat_model_configs c WHERE NOT deleted
          AND NOT EXISTS (SELECT 1 FROM chat_providers p WHERE p.provider = c.provider)) AS orphans`,
    [],
  );
  const s = z.object({ live: z.number(), defaults: z.number(), deleted_defaults: z.number(), orphans: z.number() }).parse(r.rows[0]);
  expect(s).toEqual({ live: s.live, defaults: s.live > 0 ? 1 : 0, deleted_defaults: 0, orphans: 0 });
}

describe('admin lock order', () => {
  it('a model-config update racing a delete of its provider', { timeout: 60_000 }, async () => {
    const w = await world();
    await w.created('/providers', { provider: 'anthropic' });
    await w.created('/model-configs', { provider: 'anthropic', model: 'c', context_limit: 10, is_default: true });
    for (let i = 0; i < ITERATIONS; i++) {
      const p = await w.created('/providers', { provider: 'openai' });
      const a = await w.created('/model-configs', { provider: 'openai', model: `a${i}`, context_limit: 10 });
      await w.created('/model-configs', { provider: 'openai', model: `b${i}`, context_limit: 10 });
      await w.race(['PATCH', `/model-configs/${a}`, { is_default: true, display_name: `A${i}` }], [200, 400, 404], ['DELETE', `/providers/${p}`], [204]);
    }
    await w.db.close();
  });

  it('a model-config update racing the delete of that config', { timeout: 60_000 }, async () => {
    const w = await world();
    await w.created('/providers', { provider: 'anthropic' });
    await w.created('/providers', { provider: 'openai' });
    await w.created('/model-configs', { provider: 'anthropic', model: 'c', context_limit: 10, is_default: true });
    for (let i = 0; i < ITERATIONS; i++) {
      const a = await w.created('/model-configs', { provider: 'openai', model: `a${i}`, context_limit: 10 });
      await w.race(['PATCH', `/model-configs/${a}`, { is_default: true }], [200, 404], ['DELETE', `/model-configs/${a}`], [204]);
    }
    await w.db.close();
  });

  it('a provider delete racing the delete of its default config', { timeout: 60_000 }, async () => {
    const w = await world();
    await w.created('/providers', { provider: 'anthropic' });
    await w.created('/model-configs', { provider: 'anthropic', model: 'c', context_limit: 10 });
    for (let i = 0; i < ITERATIONS; i++) {
      const p = await w.created('/providers', { provider: 'openai' });
      const a = await w.created('/model-configs', { provider: 'openai', model: `a${i}`, context_limit: 10, is_default: true });
      await w.created('/model-configs', { provider: 'openai', model: `b${i}`, context_limit: 10 });
      await w.race(['DELETE', `/providers/${p}`], [204], ['DELETE', `/model-configs/${a}`], [204, 404]);
    }
    await w.db.close();
  });
});
