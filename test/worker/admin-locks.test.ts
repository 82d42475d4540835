/**
 * Concurrent admin writes on providers and model configs, raced for real on separate connections: every path
 * takes its locks in one order (LockChatModelWrites, provider row, config rows), so none deadlocks (40P01 → 500),
 * and the state after each race is consistent.
 */
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import type { Db } from '../../functions/lib/db';
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
  return { ...w, req, created };
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
      const [patch, del] = await Promise.all([
        w.req('PATCH', `/model-configs/${a}`, { is_default: true, display_name: `A${i}` }),
        w.req('DELETE', `/providers/${p}`),
      ]);
      expect([200, 400, 404], patch.text).toContain(patch.status);
      expect(del.status, del.text).toBe(204);
      await assertConsistent(w.db);
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
      const [patch, del] = await Promise.all([
        w.req('PATCH', `/model-configs/${a}`, { is_default: true }),
        w.req('DELETE', `/model-configs/${a}`),
      ]);
      expect([200, 404], patch.text).toContain(patch.status);
      expect(del.status, del.text).toBe(204);
      await assertConsistent(w.db);
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
      const [delProvider, delConfig] = await Promise.all([w.req('DELETE', `/providers/${p}`), w.req('DELETE', `/model-configs/${a}`)]);
      expect(delProvider.status, delProvider.text).toBe(204);
      expect([204, 404], delConfig.text).toContain(delConfig.status);
      await assertConsistent(w.db);
    }
    await w.db.close();
  });
});
