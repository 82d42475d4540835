/**
 * Managing credentials (API.md "Credentials"): listing keys with when they were last used, revoking the other
 * sessions, changing the password, owners listing users, changing roles and suspending (every token of the user
 * stops at once, on every key shard), and rotating or deleting agents' tokens.
 */
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { call, ErrorBody, freshWorld, makeOwner, makeUser, testDb, type TestUser } from './helpers';

const Key = z.object({ id: z.string(), name: z.string(), created_at: z.iso.datetime(), expires_at: z.iso.datetime(), last_used_at: z.iso.datetime().nullable() }).strict();
const AdminUser = z
  .object({ id: z.uuid(), email: z.string(), username: z.string(), roles: z.array(z.enum(['owner', 'member'])), created_at: z.iso.datetime(), suspended: z.boolean() })
  .strict();

const me = async (token: string, e?: Env) => (await call('GET', '/api/v2/users/me', { token, ...(e ? { env: e } : {}) })).status;

async function apiKey(token: string, name = 'k'): Promise<{ id: string; key: string }> {
  const r = await call('POST', '/api/v2/users/me/keys', { token, body: { name } });
  expect(r.status).toBe(201);
  return z.object({ id: z.string(), key: z.string() }).parse(r.body);
}

async function login(u: TestUser, password = u.password) {
  return await call('POST', '/api/v2/users/login', { body: { email: u.user.email, password } });
}
const sessionOf = (r: { body: unknown }) => z.object({ session_token: z.string() }).parse(r.body).session_token;

async function lastUsed(keyId: string): Promise<Date | null> {
  const db = testDb();
  try {
    const r = await db.query('SELECT last_used_at FROM api_keys WHERE id = $1', [keyId]);
    return z.object({ last_used_at: z.coerce.date().nullable() }).parse(r.rows[0]).last_used_at;
  } finally {
    await db.close();
  }
}

describe('GET /users/me/keys', () => {
  it('lists your API keys (not sessions, not others’), with last_used_at written at most once an hour', async () => {
    const u = await makeUser();
    const other = await makeUser();
    const a = await apiKey(u.token, 'ci');
    await apiKey(other.token, 'theirs');
    const before = await call('GET', '/api/v2/users/me/keys', { token: u.token });
    expect(before.status).toBe(200);
    const keys = z.array(Key).parse(before.body);
    expect(keys.map((k) => [k.id, k.name, k.last_used_at])).toEqual([[a.id, 'ci', null]]);

    expect(await me(a.key)).toBe(200);
    const first = await lastUsed(a.id);
    expect(first).not.toBeNull();
    expect(await me(a.key)).toBe(200);
    expect(await lastUsed(a.id)).toEqual(first); // no second write within the hour
    const after = z.array(Key).parse((await call('GET', '/api/v2/users/me/keys', { token: u.token })).body);
    expect(after[0]?.last_used_at).toBe(first?.toISOString());
  });
});

describe('DELETE /users/me/sessions', () => {
  it('revokes every other session at once (even ones cached by their shards); this one and API keys stay', async () => {
    const u = await makeUser();
    const others = [sessionOf(await login(u)), sessionOf(await login(u)), sessionOf(await login(u))];
    const key = await apiKey(u.token);
    for (const t of [...others, key.key]) expect(await me(t)).toBe(200); // now cached in their shards
    expect((await call('DELETE', '/api/v2/users/me/sessions', { token: u.token })).status).toBe(204);
    for (const t of others) expect(await me(t)).toBe(401);
    expect(await me(u.token)).toBe(200);
    expect(await me(key.key)).toBe(200);
  });

  it('with an API key, revokes all sessions', async () => {
    const u = await makeUser();
    const key = await apiKey(u.token);
    expect(await me(u.token)).toBe(200);
    expect((await call('DELETE', '/api/v2/users/me/sessions', { token: key.key })).status).toBe(204);
    expect(await me(u.token)).toBe(401);
    expect(await me(key.key)).toBe(200);
  });
});

describe('PUT /users/me/password', () => {
  it('refuses a wrong current password (400) and changes nothing', async () => {
    const u = await makeUser();
    const r = await call('PUT', '/api/v2/users/me/password', { token: u.token, body: { old_password: 'not it', new_password: 'a new password' } });
    expect(r.status).toBe(400);
    expect(ErrorBody.parse(r.body).validations).toEqual([{ field: 'old_password', detail: 'is not your current password' }]);
    expect((await login(u)).status).toBe(201);
  });

  it('changes it and revokes the other sessions; this session and API keys keep working', async () => {
    const u = await makeUser();
    const other = sessionOf(await login(u));
    const key = await apiKey(u.token);
    expect(await me(other)).toBe(200);
    const r = await call('PUT', '/api/v2/users/me/password', { token: u.token, body: { old_password: u.password, new_password: 'a brand new one' } });
    expect(r.status).toBe(204);
    expect(await me(other)).toBe(401);
    expect(await me(u.token)).toBe(200);
    expect(await me(key.key)).toBe(200);
    expect((await login(u)).status).toBe(401);
    expect((await login(u, 'a brand new one')).status).toBe(201);
  });

  it('validates the new password', async () => {
    const u = await makeUser();
    const r = await call('PUT', '/api/v2/users/me/password', { token: u.token, body: { old_password: u.password, new_password: 'short' } });
    expect(r.status).toBe(400);
    expect(ErrorBody.parse(r.body).validations?.[0]?.field).toBe('new_password');
  });
});

describe('owners: GET /users and PATCH /users/{id}', () => {
  it('lists users with their suspension; members get 403', async () => {
    const w = await freshWorld();
    const owner = await makeOwner({ env: w.env });
    const member = await makeUser({ env: w.env });
    const r = await call('GET', '/api/v2/users', { token: owner.token, env: w.env });
    expect(r.status).toBe(200);
    const users = z.array(AdminUser).parse(r.body);
    expect(users.map((x) => [x.id, x.suspended])).toEqual([
      [owner.user.id, false],
      [member.user.id, false],
    ]);
    expect((await call('GET', '/api/v2/users?limit=1&offset=1', { token: owner.token, env: w.env })).body).toHaveLength(1);
    expect((await call('GET', '/api/v2/users', { token: member.token, env: w.env })).status).toBe(403);
    expect((await call('PATCH', `/api/v2/users/${owner.user.id}`, { token: member.token, env: w.env, body: { suspended: true } })).status).toBe(403);
    await w.db.close();
  });

  it("suspending stops every token of the user at once, on every shard, and refuses their login", async () => {
    const owner = await makeOwner();
    const u = await makeUser();
    const tokens = [u.token, sessionOf(await login(u))];
    for (let i = 0; i < 6; i++) tokens.push((await apiKey(u.token)).key);
    for (const t of tokens) expect(await me(t)).toBe(200); // cached in their shards
    const r = await call('PATCH', `/api/v2/users/${u.user.id}`, { token: owner.token, body: { suspended: true } });
    expect(r.status).toBe(200);
    expect(AdminUser.parse(r.body)).toMatchObject({ id: u.user.id, suspended: true });
    for (const t of tokens) expect(await me(t)).toBe(401);
    const refused = await login(u);
    expect(refused.status).toBe(403);
    expect(ErrorBody.parse(refused.body).message).toBe('This account is suspended.');

    expect((await call('PATCH', `/api/v2/users/${u.user.id}`, { token: owner.token, body: { suspended: false } })).status).toBe(200);
    expect(await me(sessionOf(await login(u)))).toBe(200);
  });

  it('a role change takes effect at once', async () => {
    const owner = await makeOwner();
    const u = await makeUser();
    expect((await call('GET', '/api/v2/users', { token: u.token })).status).toBe(403); // identity now cached
    expect((await call('PATCH', `/api/v2/users/${u.user.id}`, { token: owner.token, body: { roles: ['owner', 'member'] } })).status).toBe(200);
    expect((await call('GET', '/api/v2/users', { token: u.token })).status).toBe(200);
    expect((await call('PATCH', `/api/v2/users/${u.user.id}`, { token: owner.token, body: { roles: ['member'] } })).status).toBe(200);
    expect((await call('GET', '/api/v2/users', { token: u.token })).status).toBe(403);
  });

  it('keeps at least one active owner (409), and 404 for an unknown user', async () => {
    const w = await freshWorld();
    const owner = await makeOwner({ env: w.env });
    const patch = (id: string, body: unknown) => call('PATCH', `/api/v2/users/${id}`, { token: owner.token, env: w.env, body });
    for (const body of [{ suspended: true }, { roles: ['member'] }]) {
      const r = await patch(owner.user.id, body);
      expect(r.status).toBe(409);
      expect(ErrorBody.parse(r.body).message).toBe('The deployment must keep at least one active owner.');
    }
    expect(await me(owner.token, w.env)).toBe(200);
    expect((await patch(crypto.randomUUID(), { suspended: true })).status).toBe(404);
    expect((await patch(owner.user.id, {})).status).toBe(400);
    const second = await makeOwner({ env: w.env });
    expect((await patch(second.user.id, { suspended: true })).status).toBe(200);
    expect((await patch(owner.user.id, { roles: ['member'] })).status).toBe(409);
    await w.db.close();
  });
});

describe('agents: POST /agents/{id}/token and DELETE /agents/{id}', () => {
  const push = (token: string) => call('PUT', '/api/v2/agents/me/context', { token, body: { resources: [] } });

  it('rotating stops the old token at once; deleting stops the agent', async () => {
    const owner = await makeOwner();
    const created = z.object({ id: z.uuid(), token: z.string() }).parse((await call('POST', '/api/v2/agents', { token: owner.token, body: { name: 'bot' } })).body);
    expect((await push(created.token)).status).toBe(204);
    const r = await call('POST', `/api/v2/agents/${created.id}/token`, { token: owner.token });
    expect(r.status).toBe(200);
    const rotated = z.object({ id: z.literal(created.id), name: z.literal('bot'), token: z.string() }).strict().parse(r.body);
    expect((await push(created.token)).status).toBe(401);
    expect((await push(rotated.token)).status).toBe(204);
    expect((await call('DELETE', `/api/v2/agents/${created.id}`, { token: owner.token })).status).toBe(204);
    expect((await push(rotated.token)).status).toBe(401);
    expect((await call('DELETE', `/api/v2/agents/${created.id}`, { token: owner.token })).status).toBe(404);
    expect((await call('POST', `/api/v2/agents/${created.id}/token`, { token: owner.token })).status).toBe(404);
  });

  it('is for owners only', async () => {
    const owner = await makeOwner();
    const member = await makeUser();
    const created = z.object({ id: z.uuid(), token: z.string() }).parse((await call('POST', '/api/v2/agents', { token: owner.token, body: { name: 'bot' } })).body);
    expect((await call('POST', `/api/v2/agents/${created.id}/token`, { token: member.token })).status).toBe(403);
    expect((await call('DELETE', `/api/v2/agents/${created.id}`, { token: member.token })).status).toBe(403);
    expect((await push(created.token)).status).toBe(204);
  });
});
