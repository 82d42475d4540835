/**
 * The key directory (AuthDirectory shards): cached lookups, a single Postgres read per key when the cache entry
 * expires, and stale answers while Postgres cannot be reached, never for a revoked key.
 */
import { runInDurableObject } from 'cloudflare:test';
import { env } from 'cloudflare:workers';
import { describe, expect, it } from 'vitest';
import { dbSettings } from '../../functions/env';
import { Db } from '../../functions/core/db';
import { STALE_ON_ERROR_MS, type AuthDirectory } from '../../durable-objects/auth-directory';
import { sha256Hex } from '../../functions/core/crypto';
import { shardFor } from '../../functions/core/key-shards';
import { call, freshWorld, makeUser, testEnv } from './helpers';

/** What these tests reach inside a shard (private at compile time, plain fields at run time). */
interface ShardInternals {
  cache: Map<string, { at: number }>;
  maxCached: number;
  dbConn: { query: (text: string, values?: unknown[]) => Promise<unknown> } | null;
  inflight: Map<string, Promise<unknown>>;
}
const internals = (d: AuthDirectory) => d as unknown as ShardInternals;

const keyIdOf = (token: string) => token.slice(0, token.indexOf('-'));

function shardOf(url: string, token: string) {
  return env.AUTH_DIRECTORY.getByName(shardFor(url, keyIdOf(token)));
}

/** Moves the cached entry of a key `ms` into the past. */
async function age(url: string, token: string, ms: number): Promise<void> {
  await runInDurableObject(shardOf(url, token), (d: AuthDirectory) => {
    const hit = internals(d).cache.get(keyIdOf(token));
    if (!hit) throw new Error('the key is not cached');
    hit.at -= ms;
  });
}

async function dropDatabase(url: string): Promise<void> {
  const name = url.slice(url.lastIndexOf('/') + 1);
  const admin = new Db({ ...dbSettings(env), url: testEnv.PG_ADMIN_URL });
  try {
    await admin.query(`DROP DATABASE ${name} WITH (FORCE)`);
  } finally {
    await admin.close();
  }
}

describe('the key directory', () => {
  it('reads an expired key once for many concurrent requests', async () => {
    const world = await freshWorld();
    const u = await makeUser({ env: world.env });
    expect((await call('GET', '/api/v2/users/me', { token: u.token, env: world.env })).status).toBe(200);
    await age(world.url, u.token, 61_000);
    const reads: string[] = [];
    await runInDurableObject(shardOf(world.url, u.token), (d: AuthDirectory) => {
      const conn = internals(d).dbConn;
      if (!conn) throw new Error('the shard has no connection');
      // The read is held until all 12 requests have asked the single flight for it (no guess of how long that takes).
      let release: () => void = () => undefined;
      const held = new Promise<void>((r) => (release = r));
      const inflight = internals(d).inflight;
      const get = inflight.get.bind(inflight);
      let asked = 0;
      inflight.get = (key) => {
        asked += 1;
        if (asked === 12) release();
        return get(key);
      };
      const query = conn.query.bind(conn);
      conn.query = async (text, values) => {
        reads.push(text);
        await held;
        return await query(text, values);
      };
    });
    const answers = await Promise.all(Array.from({ length: 12 }, () => call('GET', '/api/v2/users/me', { token: u.token, env: world.env })));
    expect(answers.map((a) => a.status)).toEqual(Array.from({ length: 12 }, () => 200));
    expect(reads).toHaveLength(1);
    await world.db.close();
  });

  it('answers from an expired entry while Postgres is unreachable, within the stale window only', async () => {
    const world = await freshWorld();
    const u = await makeUser({ env: world.env });
    expect((await call('GET', '/api/v2/users/me', { token: u.token, env: world.env })).status).toBe(200);
    await world.db.close();
    await dropDatabase(world.url);

    // Expired for lookups, but within the stale window: the cached identity answers.
    await age(world.url, u.token, 61_000);
    const me = await call('GET', '/api/v2/users/me', { token: u.token, env: world.env });
    expect(me.status).toBe(200);
    expect(me.body).toMatchObject({ id: u.user.id });

    // Past the stale window: the database decides, and it is gone.
    await age(world.url, u.token, STALE_ON_ERROR_MS);
    const late = await call('GET', '/api/v2/users/me', { token: u.token, env: world.env });
    expect(late.status).toBe(503);
    expect(late.body).toEqual({ message: 'The database is unavailable. Try again shortly.' });
  });

  it('never answers for a revoked key, even while Postgres is unreachable', async () => {
    const world = await freshWorld();
    const u = await makeUser({ env: world.env });
    expect((await call('GET', '/api/v2/users/me', { token: u.token, env: world.env })).status).toBe(200);
    expect((await call('POST', '/api/v2/users/logout', { token: u.token, env: world.env })).status).toBe(204);
    await world.db.close();
    await dropDatabase(world.url);
    const after = await call('GET', '/api/v2/users/me', { token: u.token, env: world.env });
    expect(after.status).not.toBe(200);
  });
});

describe('the key cache under a flood of lookups', () => {
  const alnum = (n: number) => Array.from(crypto.getRandomValues(new Uint8Array(n)), (b) => 'abcdefghijklmnopqrstuvwxyz0123456789'[b % 36]).join('');

  /** A key of `userId` whose id starts with `first` (so it lands on that shard), as a bearer token. */
  async function keyOn(db: Db, userId: string, first: string): Promise<string> {
    const id = `${first}${alnum(9)}`;
    const secret = alnum(22).replace(/[a-z]/g, (ch) => ch.toUpperCase());
    await db.query("INSERT INTO api_keys (id, user_id, kind, hashed_secret, expires_at) VALUES ($1, $2, 'api_key', $3, now() + interval '1 hour')", [
      id,
      userId,
      await sha256Hex(secret),
    ]);
    return `${id}-${secret}`;
  }

  const cachedIds = async (url: string, first: string) =>
    await runInDurableObject(env.AUTH_DIRECTORY.getByName(shardFor(url, first)), (d: AuthDirectory) => [...internals(d).cache.keys()]);

  it('does not cache unknown key ids, so random ids cannot push real keys out', async () => {
    const world = await freshWorld();
    const u = await makeUser({ env: world.env });
    const token = await keyOn(world.db, u.user.id, 'q');
    expect((await call('GET', '/api/v2/users/me', { token, env: world.env })).status).toBe(200);
    for (let i = 0; i < 20; i++) {
      const r = await call('GET', '/api/v2/users/me', { token: `q${alnum(9)}-${'A'.repeat(22)}`, env: world.env });
      expect(r.status).toBe(401);
    }
    expect(await cachedIds(world.url, 'q')).toEqual([keyIdOf(token)]);
    await world.db.close();
  });

  it('evicts the least recently used key when full, not the whole cache', async () => {
    const world = await freshWorld();
    const u = await makeUser({ env: world.env });
    const [k1, k2, k3, k4] = [await keyOn(world.db, u.user.id, 'z'), await keyOn(world.db, u.user.id, 'z'), await keyOn(world.db, u.user.id, 'z'), await keyOn(world.db, u.user.id, 'z')];
    await runInDurableObject(env.AUTH_DIRECTORY.getByName(shardFor(world.url, 'z')), (d: AuthDirectory) => {
      internals(d).maxCached = 3;
    });
    const me = async (token: string) => (await call('GET', '/api/v2/users/me', { token, env: world.env })).status;
    expect([await me(k1), await me(k2), await me(k3), await me(k1), await me(k4)]).toEqual([200, 200, 200, 200, 200]);
    expect(await cachedIds(world.url, 'z')).toEqual([k3, k1, k4].map(keyIdOf));
    await world.db.close();
  });

  it("is asked without the database URL: a shard of the deployment's database knows it, another asks for it once", async () => {
    const u = await makeUser();
    const keyId = keyIdOf(u.token);
    const hashed = await sha256Hex(u.token.slice(keyId.length + 1));
    const own = env.AUTH_DIRECTORY.getByName(shardFor(testEnv.DATABASE_URL, keyId));
    expect(await own.authenticate(keyId, hashed)).toMatchObject({ ok: true, identity: { userId: u.user.id, keyId } });
    const world = await freshWorld();
    const other = await makeUser({ env: world.env });
    const otherId = keyIdOf(other.token);
    const otherHash = await sha256Hex(other.token.slice(otherId.length + 1));
    const foreign = env.AUTH_DIRECTORY.getByName(shardFor(world.url, otherId));
    expect(await foreign.authenticate(otherId, otherHash)).toEqual({ ok: false, reason: 'need_url' });
    expect(await foreign.authenticate(otherId, otherHash, world.url)).toMatchObject({ ok: true });
    // Told once: it remembers.
    await runInDurableObject(foreign, (d: AuthDirectory) => {
      internals(d).cache.clear();
    });
    expect(await foreign.authenticate(otherId, otherHash)).toMatchObject({ ok: true });
    await world.db.close();
  });
});
