import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { KeyRing } from '../../functions/core/keyring';
import type { Queryable } from '../../functions/core/db';
import { toBase64 } from '../../functions/core/crypto';
import { createModelConfig, deleteProvider, resealProviderKeys } from '../../functions/services/chat-models';
import { invalidateModelCache, resolveModel, resolveModelCached, sealBinding } from '../../functions/core/model-resolve';
import { ApiError } from '../../functions/core/errors';
import { ModelConfig as ModelConfigShape, Provider as ProviderShape, UsableModel as UsableModelShape } from '../../functions/core/shapes/models';
import { call, ErrorBody, freshWorld, lockWaiters, makeOwner, makeUser, testDb } from './helpers';

// The API's own shapes, strict: an answer with any other field (an API key, say) fails the test.
const Provider = ProviderShape.strict();
const ModelConfig = ModelConfigShape.strict();
const UsableModel = UsableModelShape.strict();

/** A fresh database with an owner, plus helpers bound to it. */
async function world() {
  const w = await freshWorld();
  const owner = await makeOwner({ env: w.env });
  const as = (token: string) => ({
    get: (p: string) => call('GET', `/api/v2/chats${p}`, { token, env: w.env }),
    post: (p: string, body?: unknown) => call('POST', `/api/v2/chats${p}`, { token, env: w.env, body }),
    patch: (p: string, body: unknown) => call('PATCH', `/api/v2/chats${p}`, { token, env: w.env, body }),
    del: (p: string) => call('DELETE', `/api/v2/chats${p}`, { token, env: w.env }),
  });
  const api = as(owner.token);
  const provider = async (type: string, extra: Record<string, unknown> = {}) => {
    const r = await api.post('/providers', { provider: type, ...extra });
    expect(r.status).toBe(201);
    return Provider.parse(r.body);
  };
  const config = async (body: Record<string, unknown>) => {
    const r = await api.post('/model-configs', { context_limit: 100_000, ...body });
    expect(r.status, r.text).toBe(201);
    return ModelConfig.parse(r.body);
  };
  const defaults = async () => {
    const r = await w.db.query('SELECT id FROM chat_model_configs WHERE is_default AND NOT deleted', []);
    return r.rows.map((x) => z.object({ id: z.string() }).parse(x).id);
  };
  return { ...w, owner, api, as, provider, config, defaults };
}

describe('providers', () => {
  it('creates, lists, updates and deletes, never returning the API key', async () => {
    const w = await world();
    const secret = 'sk-live-THIS-MUST-NEVER-LEAK-123';
    const created = await w.api.post('/providers', { provider: 'openai', api_key: secret, base_url: 'https://api.example.com/v1' });
    expect(created.status).toBe(201);
    const p = Provider.parse(created.body);
    expect(p).toMatchObject({ provider: 'openai', display_name: 'OpenAI', enabled: true, has_api_key: true, base_url: 'https://api.example.com/v1' });

    const list = await w.api.get('/providers');
    expect(list.status).toBe(200);
    expect(z.array(Provider).parse(list.body).map((x) => x.id)).toEqual([p.id]);

    const patched = await w.api.patch(`/providers/${p.id}`, { display_name: 'Work OpenAI', enabled: false });
    expect(patched.status).toBe(200);
    expect(Provider.parse(patched.body)).toMatchObject({ display_name: 'Work OpenAI', enabled: false, has_api_key: true });

    const rotated = await w.api.patch(`/providers/${p.id}`, { api_key: 'sk-second-secret-456' });
    expect(rotated.status).toBe(200);
    const cleared = await w.api.patch(`/providers/${p.id}`, { api_key: null });
    expect(Provider.parse(cleared.body).has_api_key).toBe(false);

    for (const r of [created, list, patched, rotated, cleared]) {
      expect(r.text).not.toContain(secret);
      expect(r.text).not.toContain('sk-second-secret-456');
      expect(r.text).not.toMatch(/"api_key"/);
    }
    const deleted = await w.api.del(`/providers/${p.id}`);
    expect(deleted.status).toBe(204);
    expect(z.array(Provider).parse((await w.api.get('/providers')).body)).toEqual([]);
    expect((await w.api.del(`/providers/${p.id}`)).status).toBe(404);
    expect((await w.api.patch(`/providers/${p.id}`, { enabled: true })).status).toBe(404);
    await w.db.close();
  });

  it('stores the key sealed, never in plaintext', async () => {
    const w = await world();
    const p = await w.provider('anthropic', { api_key: 'sk-ant-plaintext-check' });
    const r = await w.db.query('SELECT api_key, api_key_key_id FROM chat_providers WHERE id = $1', [p.id]);
    const row = z.object({ api_key: z.string(), api_key_key_id: z.string().length(16) }).parse(r.rows[0]);
    expect(row.api_key).not.toContain('sk-ant');
    await w.db.close();
  });

  it('answers 409 for a second provider of the same type', async () => {
    const w = await world();
    await w.provider('google');
    const dup = await w.api.post('/providers', { provider: 'google' });
    expect(dup.status).toBe(409);
    expect(ErrorBody.parse(dup.body).message).toBe('Chat provider already exists.');
    await w.db.close();
  });

  it.each([
    [{ provider: 'azure' }, 'provider'],
    [{ provider: 'openai', base_url: 'ftp://files.example.com' }, 'base_url'],
    [{ provider: 'openai', base_url: 'javascript:alert(1)' }, 'base_url'],
    [{ provider: 'openai', base_url: 'not a url' }, 'base_url'],
    [{ provider: 'openai', enabled: 'yes' }, 'enabled'],
    [{ provider: 'openai', api_key: 42 }, 'api_key'],
    [{ provider: 'openai', secret: 'x' }, '(body)'],
  ])('rejects %j with 400 and writes nothing', async (body, field) => {
    const w = await world();
    const r = await w.api.post('/providers', body);
    expect(r.status).toBe(400);
    expect(ErrorBody.parse(r.body).validations?.map((v) => v.field)).toContain(field);
    expect((await w.db.query('SELECT 1 FROM chat_providers', [])).rows).toHaveLength(0);
    await w.db.close();
  });

  it('rejects a bad patch and a malformed id with 400', async () => {
    const w = await world();
    const p = await w.provider('openrouter');
    const bad = await w.api.patch(`/providers/${p.id}`, { base_url: 'file:///etc/passwd' });
    expect(bad.status).toBe(400);
    const typeChange = await w.api.patch(`/providers/${p.id}`, { provider: 'openai' });
    expect(typeChange.status).toBe(400);
    expect((await w.api.del('/providers/not-a-uuid')).status).toBe(400);
    const after = await w.db.query('SELECT base_url, provider FROM chat_providers WHERE id = $1', [p.id]);
    expect(after.rows[0]).toEqual({ base_url: '', provider: 'openrouter' });
    await w.db.close();
  });
});

describe('model configs', () => {
  it('creates, lists in order, updates and soft-deletes', async () => {
    const w = await world();
    await w.provider('openai');
    await w.provider('anthropic');
    const b = await w.config({ provider: 'openai', model: 'gpt-b', options: { temperature: 0.2, max_output_tokens: 512 } });
    const a = await w.config({ provider: 'openai', model: 'gpt-a', is_default: true, compression_threshold: 100 });
    const c = await w.config({ provider: 'anthropic', model: 'claude' });
    expect(b).toMatchObject({ display_name: 'gpt-b', enabled: true, is_default: false, compression_threshold: 70, options: { temperature: 0.2, max_output_tokens: 512 } });
    expect(a).toMatchObject({ is_default: true, compression_threshold: 100 });

    const list = z.array(ModelConfig).parse((await w.api.get('/model-configs')).body);
    expect(list.map((x) => x.model)).toEqual(['claude', 'gpt-a', 'gpt-b']);

    const patched = await w.api.patch(`/model-configs/${c.id}`, { is_default: true, display_name: 'Claude', context_limit: 200_000 });
    expect(patched.status).toBe(200);
    expect(ModelConfig.parse(patched.body)).toMatchObject({ is_default: true, display_name: 'Claude', context_limit: 200_000 });
    expect(await w.defaults()).toEqual([c.id]);

    expect((await w.api.del(`/model-configs/${b.id}`)).status).toBe(204);
    expect((await w.api.del(`/model-configs/${b.id}`)).status).toBe(404);
    const gone = await w.api.patch(`/model-configs/${b.id}`, { model: 'x' });
    expect(gone.status).toBe(404);
    expect(ErrorBody.parse(gone.body).message).toBe('Resource not found or you do not have access to this resource');
    const row = await w.db.query('SELECT deleted, deleted_at IS NOT NULL AS stamped FROM chat_model_configs WHERE id = $1', [b.id]);
    expect(row.rows[0]).toEqual({ deleted: true, stamped: true });
    await w.db.close();
  });

  it('refuses a config for a provider that is not configured', async () => {
    const w = await world();
    const r = await w.api.post('/model-configs', { provider: 'openai', model: 'gpt', context_limit: 1000 });
    expect(r.status).toBe(400);
    expect(ErrorBody.parse(r.body).message).toBe('Chat provider is not configured.');
    await w.provider('anthropic');
    const c = await w.config({ provider: 'anthropic', model: 'claude' });
    const moved = await w.api.patch(`/model-configs/${c.id}`, { provider: 'google' });
    expect(moved.status).toBe(400);
    expect(ErrorBody.parse(moved.body).message).toBe('Chat provider is not configured.');
    await w.db.close();
  });

  it.each([
    [{ provider: 'openai', model: 'm', context_limit: 0 }, 'context_limit'],
    [{ provider: 'openai', model: 'm' }, 'context_limit'],
    [{ provider: 'openai', model: '', context_limit: 10 }, 'model'],
    [{ provider: 'openai', model: 'm', context_limit: 10, compression_threshold: 101 }, 'compression_threshold'],
    [{ provider: 'openai', model: 'm', context_limit: 10, compression_threshold: -1 }, 'compression_threshold'],
    [{ provider: 'openai', model: 'm', context_limit: 10, options: { temperature: 9 } }, 'options.temperature'],
    [{ provider: 'openai', model: 'm', context_limit: 10, options: { seed: 1 } }, 'options'],
    [{ provider: 'openai', model: 'm', context_limit: 1.5 }, 'context_limit'],
  ])('rejects %j with 400 and writes nothing', async (body, field) => {
    const w = await world();
    await w.provider('openai');
    const r = await w.api.post('/model-configs', body);
    expect(r.status).toBe(400);
    expect(ErrorBody.parse(r.body).validations?.map((v) => v.field)).toContain(field);
    expect((await w.db.query('SELECT 1 FROM chat_model_configs', [])).rows).toHaveLength(0);
    await w.db.close();
  });

  it('keeps exactly one default when setting it on create and on update', async () => {
    const w = await world();
    await w.provider('openai');
    const a = await w.config({ provider: 'openai', model: 'a', is_default: true });
    const b = await w.config({ provider: 'openai', model: 'b', is_default: true });
    expect(await w.defaults()).toEqual([b.id]);
    await w.api.patch(`/model-configs/${a.id}`, { is_default: true });
    expect(await w.defaults()).toEqual([a.id]);
    const many = await Promise.all(
      ['c', 'd', 'e', 'f'].map((m) => w.api.post('/model-configs', { provider: 'openai', model: m, context_limit: 10, is_default: true })),
    );
    expect(many.map((r) => r.status)).toEqual([201, 201, 201, 201]);
    expect(await w.defaults()).toHaveLength(1);
    await w.db.close();
  });
});

describe('default promotion', () => {
  it('promotes by provider ASC, model ASC, updated_at DESC, id DESC, with ties on updated_at', async () => {
    const w = await world();
    await w.provider('openai');
    await w.provider('anthropic');
    const dflt = await w.config({ provider: 'anthropic', model: 'aaa', is_default: true });
    const older = await w.config({ provider: 'openai', model: 'm1' });
    const newer = await w.config({ provider: 'openai', model: 'm1' });
    const tieA = await w.config({ provider: 'openai', model: 'm0' });
    const tieB = await w.config({ provider: 'openai', model: 'm0' });
    await w.config({ provider: 'openai', model: 'z' });
    await w.db.query("UPDATE chat_model_configs SET updated_at = '2026-01-01T00:00:00Z' WHERE id = ANY($1::uuid[])", [[tieA.id, tieB.id]]);
    await w.db.query("UPDATE chat_model_configs SET updated_at = '2026-01-01T00:00:00Z' WHERE id = $1", [older.id]);
    await w.db.query("UPDATE chat_model_configs SET updated_at = '2026-02-01T00:00:00Z' WHERE id = $1", [newer.id]);

    // Deleting the default promotes openai/m0, and between the two tied rows the larger id.
    expect((await w.api.del(`/model-configs/${dflt.id}`)).status).toBe(204);
    const expected = [tieA.id, tieB.id].sort().at(-1);
    expect(await w.defaults()).toEqual([expected]);

    // Deleting a non-default promotes nothing.
    expect((await w.api.del(`/model-configs/${older.id}`)).status).toBe(204);
    expect(await w.defaults()).toEqual([expected]);
    await w.db.close();
  });

  it("deleting the default's provider soft-deletes its configs and promotes another provider's config", async () => {
    const w = await world();
    const openai = await w.provider('openai');
    await w.provider('google');
    const d = await w.config({ provider: 'openai', model: 'gpt', is_default: true });
    const other = await w.config({ provider: 'openai', model: 'gpt-mini' });
    const g = await w.config({ provider: 'google', model: 'gemini' });

    expect((await w.api.del(`/providers/${openai.id}`)).status).toBe(204);
    expect(await w.defaults()).toEqual([g.id]);
    const rows = await w.db.query('SELECT id, deleted FROM chat_model_configs ORDER BY model', []);
    expect(rows.rows).toEqual([
      { id: g.id, deleted: false },
      { id: d.id, deleted: true },
      { id: other.id, deleted: true },
    ]);
    // History still resolves the soft-deleted config by id; live lists hide it.
    const hist = await w.db.query('SELECT model FROM chat_model_configs WHERE id = $1', [d.id]);
    expect(hist.rows).toEqual([{ model: 'gpt' }]);
    const live = z.array(ModelConfig).parse((await w.api.get('/model-configs')).body);
    expect(live.map((x) => x.id)).toEqual([g.id]);
    // A turn that asks for the deleted config falls back to the new default.
    const resolved = await resolveModel(w.db, d.id);
    expect(resolved.config.id).toBe(g.id);
    expect(resolved.requested).toBe(false);
    await w.db.close();
  });

  it('deleting the only provider leaves no default, and resolution says so', async () => {
    const w = await world();
    const p = await w.provider('openai');
    const d = await w.config({ provider: 'openai', model: 'gpt', is_default: true });
    expect((await w.api.del(`/providers/${p.id}`)).status).toBe(204);
    expect(await w.defaults()).toEqual([]);
    await expect(resolveModel(w.db, null)).rejects.toThrow('no default chat model config is available');
    await expect(resolveModel(w.db, d.id)).rejects.toThrow('no default chat model config is available');
    expect(z.array(UsableModel).parse((await w.api.get('/models')).body)).toEqual([]);
    await w.db.close();
  });
});

describe('concurrency on two real connections', () => {
  it('a model-config create waiting on a provider delete gets 400, never a live orphan', async () => {
    const w = await world();
    const p = await w.provider('openai');
    const a = w.db;
    const b = testDb(w.env);
    let createSettled = false;
    const created = await a.inTx(async (tx) => {
      await tx.query('SELECT 1 FROM chat_providers WHERE id = $1 FOR UPDATE', [p.id]);
      const pending = createModelConfig(b, w.owner.user.id, { provider: 'openai', model: 'racer', context_limit: 10 }).finally(() => {
        createSettled = true;
      });
      await lockWaiters(tx);
      expect(createSettled).toBe(false); // blocked on the provider row lock
      await tx.query("UPDATE chat_model_configs SET deleted = true, deleted_at = now() WHERE provider = 'openai' AND NOT deleted", []);
      await tx.query('DELETE FROM chat_providers WHERE id = $1', [p.id]);
      // Wrapped, so the transaction commits before we wait for the blocked create.
      return { pending: pending.then(() => 'created', (e: unknown) => e) };
    });
    const outcome = await created.pending;
    expect(outcome).toBeInstanceOf(ApiError);
    expect(outcome instanceof ApiError && outcome.status).toBe(400);
    await assertNoLiveOrphans(w.db);
    await b.close();
    await w.db.close();
  });

  it('racing deletes and creates through the API never leave a live config under a deleted provider', async () => {
    const w = await world();
    for (let i = 0; i < 8; i++) {
      const p = await w.provider('openai');
      const results = await Promise.all([
        w.api.post('/model-configs', { provider: 'openai', model: `m${i}`, context_limit: 10 }),
        w.api.del(`/providers/${p.id}`),
        w.api.post('/model-configs', { provider: 'openai', model: `n${i}`, context_limit: 10 }),
      ]);
      const [first, deleted, second] = results;
      expect(deleted.status).toBe(204);
      for (const r of [first, second]) expect([201, 400]).toContain(r.status);
      await assertNoLiveOrphans(w.db);
    }
    await w.db.close();
  });

  it('a PATCH whose row is soft-deleted while it waits answers 404', async () => {
    const w = await world();
    await w.provider('openai');
    const c = await w.config({ provider: 'openai', model: 'x' });
    const outcome = await w.db.inTx(async (tx) => {
      await tx.query('SELECT 1 FROM chat_model_configs WHERE id = $1 FOR UPDATE', [c.id]);
      const pending = w.api.patch(`/model-configs/${c.id}`, { display_name: 'late' });
      await lockWaiters(tx);
      await tx.query('UPDATE chat_model_configs SET deleted = true, deleted_at = now() WHERE id = $1', [c.id]);
      return { pending }; // wrapped: commit first, then wait for the blocked PATCH
    });
    const r = await outcome.pending;
    expect(r.status).toBe(404);
    expect(ErrorBody.parse(r.body).message).toBe('Resource not found or you do not have access to this resource');
    expect(r.text).not.toMatch(/no rows/);
    await w.db.close();
  });
});

async function assertNoLiveOrphans(db: Queryable) {
  const r = await db.query(
    `SELECT count(*)::int AS n FROM chat_model_configs cmc
     WHERE NOT cmc.deleted AND NOT EXISTS (SELECT 1 FROM chat_providers cp WHERE cp.provider = cmc.provider)`,
    [],
  );
  expect(r.rows[0]).toEqual({ n: 0 });
}

describe('access', () => {
  it('members get 403 on every admin route and see only usable models', async () => {
    const w = await world();
    const member = await makeUser({ env: w.env });
    const m = w.as(member.token);
    const p = await w.provider('openai');
    const off = await w.provider('anthropic', { enabled: false });
    const usable = await w.config({ provider: 'openai', model: 'usable', is_default: true });
    const disabled = await w.config({ provider: 'openai', model: 'disabled', enabled: false });
    await w.config({ provider: 'anthropic', model: 'provider-off' });
    const deleted = await w.config({ provider: 'openai', model: 'deleted' });
    await w.api.del(`/model-configs/${deleted.id}`);

    for (const r of [
      await m.get('/providers'),
      await m.post('/providers', { provider: 'google' }),
      await m.patch(`/providers/${p.id}`, { enabled: false }),
      await m.del(`/providers/${off.id}`),
      await m.get('/model-configs'),
      await m.post('/model-configs', { provider: 'openai', model: 'x', context_limit: 1 }),
      await m.patch(`/model-configs/${disabled.id}`, { enabled: true }),
      await m.del(`/model-configs/${usable.id}`),
    ]) {
      expect(r.status).toBe(403);
      ErrorBody.parse(r.body);
    }
    const models = await m.get('/models');
    expect(models.status).toBe(200);
    expect(z.array(UsableModel).parse(models.body)).toEqual([
      { id: usable.id, provider: 'openai', model: 'usable', display_name: 'usable', is_default: true, context_limit: 100_000, pricing: null },
    ]);
    const anon = await call('GET', '/api/v2/chats/models', { env: w.env });
    expect(anon.status).toBe(401);
    // Nothing a member tried changed anything.
    expect((await w.db.query('SELECT count(*)::int AS n FROM chat_providers', [])).rows[0]).toEqual({ n: 2 });
    await w.db.close();
  });
});

describe('API key encryption', () => {
  const key = () => toBase64(crypto.getRandomValues(new Uint8Array(32)));

  it('round-trips, binds the ciphertext to its row, and rejects a bad secret', async () => {
    const ring = await KeyRing.fromSecret(key());
    const sealed = await ring.seal('sk-abc', 'chat_providers:1');
    expect(sealed.ciphertext).not.toContain('sk-abc');
    expect(await ring.open(sealed, 'chat_providers:1')).toBe('sk-abc');
    await expect(ring.open(sealed, 'chat_providers:2')).rejects.toThrow(/authentication/);
    const other = await KeyRing.fromSecret(key());
    await expect(other.open(sealed, 'chat_providers:1')).rejects.toThrow(/not in PROVIDER_KEY_ENCRYPTION_KEY/);
    await expect(KeyRing.fromSecret('')).rejects.toThrow(/not set/);
    await expect(KeyRing.fromSecret(toBase64(new Uint8Array(16)))).rejects.toThrow(/32 bytes/);
  });

  it('rotates: a new key first, the old one after, reseal, then the old key can go', async () => {
    const w = await world();
    const k1 = key();
    const k2 = key();
    const ring1 = await KeyRing.fromSecret(k1);
    const id = crypto.randomUUID();
    const s = await ring1.seal('sk-rotate-me', sealBinding(id));
    await w.db.query("INSERT INTO chat_providers (id, provider, api_key, api_key_key_id) VALUES ($1, 'openai', $2, $3)", [id, s.ciphertext, s.keyId]);

    const ring21 = await KeyRing.fromSecret(`${k2},${k1}`);
    expect(await resealProviderKeys(w.db, ring21)).toBe(1);
    expect(await resealProviderKeys(w.db, ring21)).toBe(0);
    const r = await w.db.query('SELECT api_key, api_key_key_id FROM chat_providers WHERE id = $1', [id]);
    const row = z.object({ api_key: z.string(), api_key_key_id: z.string() }).parse(r.rows[0]);
    expect(row.api_key_key_id).toBe(ring21.currentKeyId);
    const ring2 = await KeyRing.fromSecret(k2);
    expect(await ring2.open({ ciphertext: row.api_key, keyId: row.api_key_key_id }, sealBinding(id))).toBe('sk-rotate-me');
    await w.db.close();
  });
});

describe('model resolution cache', () => {
  it('serves the second resolution without a query, and a write invalidates it', async () => {
    const w = await world();
    await w.provider('openai');
    const c = await w.config({ provider: 'openai', model: 'cached', is_default: true });
    invalidateModelCache();
    let queries = 0;
    const counting: Queryable = {
      query: (t, v) => {
        queries += 1;
        return w.db.query(t, v);
      },
    };
    const first = await resolveModelCached(counting, null);
    const second = await resolveModelCached(counting, null);
    expect(first.config.id).toBe(c.id);
    expect(second).toBe(first);
    expect(queries).toBe(1);

    await w.api.patch(`/model-configs/${c.id}`, { context_limit: 4242 });
    const third = await resolveModelCached(counting, null);
    expect(queries).toBe(2);
    expect(third.config.context_limit).toBe(4242);
    await w.db.close();
  });

  it('does not store a result fetched before an invalidation that landed during the fetch', async () => {
    const w = await world();
    await w.provider('openai');
    await w.config({ provider: 'openai', model: 'g', is_default: true });
    invalidateModelCache();
    let queries = 0;
    const slow: Queryable = {
      query: async (t, v) => {
        queries += 1;
        const r = await w.db.query(t, v);
        invalidateModelCache(); // a write lands while this read is in flight
        return r;
      },
    };
    await resolveModelCached(slow, null);
    await resolveModelCached(slow, null);
    expect(queries).toBe(2);
    await w.db.close();
  });

  it('deleting the provider invalidates a cached resolution', async () => {
    const w = await world();
    const p = await w.provider('openai');
    await w.config({ provider: 'openai', model: 'g', is_default: true });
    invalidateModelCache();
    await resolveModelCached(w.db, null);
    await deleteProvider(w.db, p.id);
    await expect(resolveModelCached(w.db, null)).rejects.toThrow('no default chat model config is available');
    await w.db.close();
  });
});
