import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { call, ErrorBody, freshWorld, makeOwner, makeUser, testDb, uniq } from './helpers';

const User = z
  .object({
    id: z.uuid(),
    email: z.string(),
    username: z.string(),
    roles: z.array(z.enum(['owner', 'member'])),
    created_at: z.iso.datetime(),
  })
  .strict();
const Token = /^[a-z0-9]{10}-[A-Za-z0-9]{22}$/;

async function countUsers(db: { query: (t: string, v: unknown[]) => Promise<{ rows: unknown[] }> }) {
  const r = await db.query('SELECT count(*)::int AS n FROM users', []);
  return z.object({ n: z.number() }).parse(r.rows[0]).n;
}

describe('POST /users/first', () => {
  it('creates the owner once, with a working session, then answers 409', async () => {
    const w = await freshWorld();
    const body = { email: 'Admin@Example.com', username: 'admin', password: 'correct horse' };
    const r = await call('POST', '/api/v2/users/first', { body, env: w.env });
    expect(r.status).toBe(201);
    const out = z.object({ user: User, session_token: z.string().regex(Token) }).strict().parse(r.body);
    expect(out.user.roles).toEqual(['owner']);
    expect(out.user.email).toBe('Admin@Example.com');
    expect(r.headers.get('set-cookie')).toContain('session_token=');

    const me = await call('GET', '/api/v2/users/me', { token: out.session_token, env: w.env });
    expect(me.status).toBe(200);
    expect(User.parse(me.body)).toEqual(out.user);

    const again = await call('POST', '/api/v2/users/first', {
      body: { email: 'other@example.com', username: 'other', password: 'correct horse' },
      env: w.env,
    });
    expect(again.status).toBe(409);
    expect(ErrorBody.parse(again.body).message).toMatch(/first user/i);
    expect(await countUsers(w.db)).toBe(1);
    await w.db.close();
  });

  it('lets exactly one of many concurrent bootstrap calls win', async () => {
    const w = await freshWorld();
    const results = await Promise.all(
      [1, 2, 3, 4].map((i) =>
        call('POST', '/api/v2/users/first', {
          body: { email: `o${i}@example.com`, username: `o${i}`, password: 'correct horse' },
          env: w.env,
        }),
      ),
    );
    expect(results.map((r) => r.status).sort()).toEqual([201, 409, 409, 409]);
    expect(await countUsers(w.db)).toBe(1);
    await w.db.close();
  });

  it.each([
    ['missing fields', {}, ['email', 'username', 'password']],
    ['bad email', { email: 'nope', username: 'a', password: 'long enough' }, ['email']],
    ['short password', { email: 'a@b.co', username: 'a', password: 'short' }, ['password']],
    ['bad username', { email: 'a@b.co', username: '-x y', password: 'long enough' }, ['username']],
    ['unknown field', { email: 'a@b.co', username: 'a', password: 'long enough', admin: true }, ['(body)']],
  ])('rejects %s with 400 and writes nothing', async (_name, body, fields) => {
    const w = await freshWorld();
    const r = await call('POST', '/api/v2/users/first', { body, env: w.env });
    expect(r.status).toBe(400);
    const err = ErrorBody.parse(r.body);
    expect(err.message).toBe('Validation failed.');
    expect(err.validations?.map((v) => v.field).sort()).toEqual([...fields].sort());
    expect(await countUsers(w.db)).toBe(0);
    await w.db.close();
  });

  it('rejects a body that is not JSON', async () => {
    const w = await freshWorld();
    const bad = await call('POST', '/api/v2/users/first', {
      rawBody: '{"email":',
      headers: { 'content-type': 'application/json' },
      env: w.env,
    });
    expect(bad.status).toBe(400);
    expect(ErrorBody.parse(bad.body).message).toMatch(/not valid JSON/);
    const form = await call('POST', '/api/v2/users/first', {
      rawBody: 'email=a',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      env: w.env,
    });
    expect(form.status).toBe(415);
    expect(ErrorBody.parse(form.body).message).toMatch(/must be JSON/);
    expect(await countUsers(w.db)).toBe(0);
    await w.db.close();
  });
});

describe('login and logout', () => {
  it('logs in case-insensitively by email and the token works as bearer and cookie', async () => {
    const u = await makeUser();
    const r = await call('POST', '/api/v2/users/login', {
      body: { email: u.user.email.toUpperCase(), password: u.password },
    });
    expect(r.status).toBe(201);
    const { session_token } = z.object({ session_token: z.string().regex(Token) }).strict().parse(r.body);
    const viaBearer = await call('GET', '/api/v2/users/me', { token: session_token });
    expect(viaBearer.status).toBe(200);
    expect(User.parse(viaBearer.body).id).toBe(u.user.id);
    const viaCookie = await call('GET', '/api/v2/users/me', { cookie: `session_token=${session_token}` });
    expect(viaCookie.status).toBe(200);
    expect(User.parse(viaCookie.body).id).toBe(u.user.id);
  });

  it('answers the same 401 for a wrong password and an unknown email', async () => {
    const u = await makeUser();
    const wrong = await call('POST', '/api/v2/users/login', { body: { email: u.user.email, password: 'wrong-password' } });
    const unknown = await call('POST', '/api/v2/users/login', {
      body: { email: `nobody-${uniq()}@example.com`, password: 'whatever1' },
    });
    expect(wrong.status).toBe(401);
    expect(unknown.status).toBe(401);
    expect(ErrorBody.parse(wrong.body)).toEqual(ErrorBody.parse(unknown.body));
  });

  it('rejects a malformed login body with 400', async () => {
    const r = await call('POST', '/api/v2/users/login', { body: { email: 'a@b.co' } });
    expect(r.status).toBe(400);
    expect(ErrorBody.parse(r.body).validations?.[0]?.field).toBe('password');
  });

  it('revokes the session on logout', async () => {
    const u = await makeUser();
    expect((await call('GET', '/api/v2/users/me', { token: u.token })).status).toBe(200);
    const out = await call('POST', '/api/v2/users/logout', { token: u.token });
    expect(out.status).toBe(204);
    const after = await call('GET', '/api/v2/users/me', { token: u.token });
    expect(after.status).toBe(401);
    expect(ErrorBody.parse(after.body).detail).toMatch(/revoked/);
    expect((await call('POST', '/api/v2/users/logout', { token: u.token })).status).toBe(401);
  });
});

describe('authentication failures', () => {
  it.each([
    ['no token', {}],
    ['garbage bearer', { token: 'garbage' }],
    ['wrong secret', { token: 'abcdefghij-AAAAAAAAAAAAAAAAAAAAAA' }],
    ['empty bearer', { headers: { authorization: 'Bearer ' } }],
    ['basic auth', { headers: { authorization: 'Basic dTpw' } }],
    ['bad cookie', { cookie: 'session_token=nope' }],
  ])('%s → 401', async (_n, opts) => {
    const r = await call('GET', '/api/v2/users/me', opts);
    expect(r.status).toBe(401);
    ErrorBody.parse(r.body);
  });

  it('a known key id with the wrong secret is refused', async () => {
    const u = await makeUser();
    const id = u.token.split('-')[0] ?? '';
    const r = await call('GET', '/api/v2/users/me', { token: `${id}-${'B'.repeat(22)}` });
    expect(r.status).toBe(401);
  });

  it('an expired key is refused', async () => {
    const u = await makeUser();
    const db = testDb();
    await db.query("UPDATE api_keys SET expires_at = now() - interval '1 second' WHERE id = $1", [u.token.split('-')[0]]);
    await db.close();
    const r = await call('GET', '/api/v2/users/me', { token: u.token });
    expect(r.status).toBe(401);
    expect(ErrorBody.parse(r.body).detail).toMatch(/expired/);
  });

  it('authenticates before validating: an anonymous bad body is 401, not 400', async () => {
    const r = await call('POST', '/api/v2/users', { body: { nonsense: true } });
    expect(r.status).toBe(401);
  });
});

describe('POST /users (owner creates users)', () => {
  it('creates a member by default and one with roles when asked', async () => {
    const owner = await makeOwner();
    const u = uniq();
    const r = await call('POST', '/api/v2/users', {
      token: owner.token,
      body: { email: `m-${u}@example.com`, username: `m-${u}`, password: 'member password' },
    });
    expect(r.status).toBe(201);
    const member = User.parse(r.body);
    expect(member.roles).toEqual(['member']);
    const login = await call('POST', '/api/v2/users/login', {
      body: { email: `m-${u}@example.com`, password: 'member password' },
    });
    expect(login.status).toBe(201);

    const r2 = await call('POST', '/api/v2/users', {
      token: owner.token,
      body: { email: `o-${u}@example.com`, username: `o-${u}`, password: 'owner password', roles: ['owner'] },
    });
    expect(r2.status).toBe(201);
    expect(User.parse(r2.body).roles).toEqual(['owner']);
  });

  it('answers 409 for a taken email or username, case-insensitively', async () => {
    const owner = await makeOwner();
    const other = await makeUser();
    const dupEmail = await call('POST', '/api/v2/users', {
      token: owner.token,
      body: { email: other.user.email.toUpperCase(), username: `x-${uniq()}`, password: 'long enough' },
    });
    expect(dupEmail.status).toBe(409);
    expect(ErrorBody.parse(dupEmail.body).message).toMatch(/email/);
    const dupName = await call('POST', '/api/v2/users', {
      token: owner.token,
      body: { email: `x-${uniq()}@example.com`, username: other.user.username.toUpperCase(), password: 'long enough' },
    });
    expect(dupName.status).toBe(409);
    expect(ErrorBody.parse(dupName.body).message).toMatch(/username/);
  });

  it('is 403 for members and writes nothing', async () => {
    const member = await makeUser();
    const u = uniq();
    const r = await call('POST', '/api/v2/users', {
      token: member.token,
      body: { email: `z-${u}@example.com`, username: `z-${u}`, password: 'long enough' },
    });
    expect(r.status).toBe(403);
    ErrorBody.parse(r.body);
    const db = testDb();
    const rows = await db.query('SELECT 1 FROM users WHERE username = $1', [`z-${u}`]);
    await db.close();
    expect(rows.rows).toHaveLength(0);
  });

  it('rejects unknown roles and empty role lists with 400', async () => {
    const owner = await makeOwner();
    for (const roles of [['admin'], []]) {
      const u = uniq();
      const r = await call('POST', '/api/v2/users', {
        token: owner.token,
        body: { email: `r-${u}@example.com`, username: `r-${u}`, password: 'long enough', roles },
      });
      expect(r.status).toBe(400);
      expect(ErrorBody.parse(r.body).validations?.[0]?.field).toMatch(/^roles/);
    }
  });
});

describe('API keys', () => {
  it('creates a key shown once, which authenticates until deleted', async () => {
    const u = await makeUser();
    const r = await call('POST', '/api/v2/users/me/keys', { token: u.token, body: { name: 'ci', lifetime_seconds: 600 } });
    expect(r.status).toBe(201);
    const key = z.object({ id: z.string(), key: z.string().regex(Token) }).strict().parse(r.body);
    expect(key.key.startsWith(`${key.id}-`)).toBe(true);

    const db = testDb();
    const stored = await db.query('SELECT hashed_secret, kind, name, expires_at FROM api_keys WHERE id = $1', [key.id]);
    await db.close();
    const row = z
      .object({ hashed_secret: z.string(), kind: z.string(), name: z.string(), expires_at: z.coerce.date() })
      .parse(stored.rows[0]);
    expect(row.hashed_secret).not.toContain(key.key.split('-')[1] ?? '');
    expect(row.hashed_secret).toMatch(/^[0-9a-f]{64}$/);
    expect(row).toMatchObject({ kind: 'api_key', name: 'ci' });
    expect(Math.abs(row.expires_at.getTime() - Date.now() - 600_000)).toBeLessThan(30_000);

    expect((await call('GET', '/api/v2/users/me', { token: key.key })).status).toBe(200);
    expect((await call('DELETE', `/api/v2/users/me/keys/${key.id}`, { token: u.token })).status).toBe(204);
    expect((await call('GET', '/api/v2/users/me', { token: key.key })).status).toBe(401);
    expect((await call('DELETE', `/api/v2/users/me/keys/${key.id}`, { token: u.token })).status).toBe(404);
  });

  it('creates a key with no body at all', async () => {
    const u = await makeUser();
    const r = await call('POST', '/api/v2/users/me/keys', { token: u.token });
    expect(r.status).toBe(201);
  });

  it("cannot delete another user's key (404) and the key keeps working", async () => {
    const a = await makeUser();
    const b = await makeUser();
    const keyId = b.token.split('-')[0] ?? '';
    const r = await call('DELETE', `/api/v2/users/me/keys/${keyId}`, { token: a.token });
    expect(r.status).toBe(404);
    expect(ErrorBody.parse(r.body).message).toBe('Resource not found or you do not have access to this resource');
    expect((await call('GET', '/api/v2/users/me', { token: b.token })).status).toBe(200);
  });

  it.each([
    [{ lifetime_seconds: 10 }, 'lifetime_seconds'],
    [{ lifetime_seconds: 10 ** 10 }, 'lifetime_seconds'],
    [{ lifetime_seconds: 'soon' }, 'lifetime_seconds'],
    [{ name: 'x'.repeat(65) }, 'name'],
    [{ extra: 1 }, '(body)'],
  ])('rejects %j with 400 and creates no key', async (body, field) => {
    const u = await makeUser();
    const r = await call('POST', '/api/v2/users/me/keys', { token: u.token, body });
    expect(r.status).toBe(400);
    expect(ErrorBody.parse(r.body).validations?.[0]?.field).toBe(field);
    const db = testDb();
    const rows = await db.query("SELECT 1 FROM api_keys WHERE user_id = $1 AND kind = 'api_key'", [u.user.id]);
    await db.close();
    expect(rows.rows).toHaveLength(0);
  });

  it('rejects a malformed key id with 400', async () => {
    const u = await makeUser();
    const r = await call('DELETE', '/api/v2/users/me/keys/NOT_AN_ID', { token: u.token });
    expect(r.status).toBe(400);
    expect(ErrorBody.parse(r.body).validations?.[0]?.field).toBe('id');
  });
});
