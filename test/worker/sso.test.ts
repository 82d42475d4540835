/**
 * Single sign-on through the local OpenID provider (a real provider on loopback: discovery, JWKS, RS256 ID tokens):
 * a full login creates a member with the mapped groups; every misbehaviour ends with no session and no user; a
 * returning subject is the same user; a group removed at the provider is removed at the next login and closes the
 * user's viewer streams (4403).
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { call, sdk, startChat, testDb, uniq } from './helpers';
import { StreamClient } from './stream-client';
import { callback, configureSso, getNoFollow, providerControl, providerUser, signIn, throughProvider, userByEmail, type SsoWorld } from './sso-helpers';

let world: SsoWorld;
beforeAll(async () => {
  world = await configureSso();
});

async function groupsOf(userId: string): Promise<string[]> {
  const db = testDb();
  try {
    const r = await db.query('SELECT group_id::text AS g FROM group_members WHERE user_id = $1 ORDER BY 1', [userId]);
    return r.rows.map((x) => (x as { g: string }).g);
  } finally {
    await db.close();
  }
}

const email = () => `sso-${uniq()}@example.com`;

describe('single sign-on', () => {
  it('says how one may sign in', async () => {
    const r = await call('GET', '/api/v2/auth/methods');
    expect(r.body).toEqual({ password: true, oidc: { enabled: true, display_name: 'Local' } });
  });

  it('a full login creates a member with the mapped groups, a session, and lands on the saved path', async () => {
    const mail = email();
    const id = await providerUser({ email: mail, groups: ['engineering', 'staff', 'unmapped'] });
    const out = await signIn(id);
    expect(out.status).toBe(302);
    expect(out.location).toBe('/chats');
    expect(out.session).not.toBeNull();
    const me = await sdk(out.session ?? '').me();
    expect(me).toMatchObject({ email: mail, roles: ['member'] });
    expect(await groupsOf(me.id)).toEqual([world.engineering, world.staff].sort());
  });

  it('a returning sub gets the same user; a group removed at the provider goes at the next login', async () => {
    const mail = email();
    const id = await providerUser({ email: mail, groups: ['engineering', 'staff'] });
    const first = await signIn(id);
    const user = await userByEmail(mail);
    expect(user).not.toBeNull();
    await providerControl(`users/${id}`, { groups: ['staff'] });
    const second = await signIn(id);
    expect(second.session).not.toBeNull();
    expect(second.session).not.toBe(first.session);
    expect((await sdk(second.session ?? '').me()).id).toBe(user?.id);
    expect(await groupsOf(user?.id ?? '')).toEqual([world.staff]);
  });

  it("closes the user's viewer streams (4403) when the provider removes the group that gave them the chat", async () => {
    const mail = email();
    const id = await providerUser({ email: mail, groups: ['engineering'] });
    const first = await signIn(id);
    const token = first.session ?? '';
    const chat = await startChat(world.owner.token, 'for engineering');
    await sdk(world.owner.token).updateChatAcl(chat.id, { groups: { [world.engineering]: 'viewer' } });
    const watching = await StreamClient.connected(chat.id, token);
    await providerControl(`users/${id}`, { groups: [] });
    const second = await signIn(id);
    expect(second.session).not.toBeNull();
    await watching.waitClosed();
    expect(watching.closed?.code).toBe(4403);
    expect((await call('GET', `/api/v2/chats/${chat.id}`, { token })).status).toBe(404);
  });
});

describe('each misbehaviour gives no session and no user', () => {
  async function refused(mail: string, out: { status: number; location: string; session: string | null }, code: string) {
    expect(out).toEqual({ status: 302, location: `/login?error=${code}`, session: null });
    expect(await userByEmail(mail)).toBeNull();
  }

  for (const [fault, code] of [
    ['bad_signature', 'invalid_token'],
    ['wrong_aud', 'invalid_token'],
    ['wrong_iss', 'invalid_token'],
    ['expired', 'invalid_token'],
    ['wrong_nonce', 'invalid_token'],
  ] as const) {
    it(`an ID token with ${fault.replace('_', ' ')}`, async () => {
      const mail = email();
      const id = await providerUser({ email: mail });
      const started = await throughProvider(id);
      await providerControl('fault', { kind: fault });
      await refused(mail, await callback(started), code);
    });
  }

  it('a state mismatch (a state we never issued)', async () => {
    const mail = email();
    const started = await throughProvider(await providerUser({ email: mail }));
    const url = new URL(started.callback);
    url.searchParams.set('state', 'not-our-state');
    await refused(mail, await callback(started, { url }), 'invalid_state');
    // The real state is still unused, but the flow cookie of another browser does not match it.
    await refused(mail, await callback(started, { cookie: 'oidc_flow=someone-else' }), 'invalid_state');
  });

  it('a callback without the browser cookie that started the flow', async () => {
    const mail = email();
    const started = await throughProvider(await providerUser({ email: mail }));
    await refused(mail, await callback(started, { cookie: null }), 'invalid_state');
  });

  it('a replayed callback', async () => {
    const mail = email();
    const started = await throughProvider(await providerUser({ email: mail }));
    const first = await callback(started);
    expect(first.session).not.toBeNull();
    const replay = await callback(started);
    expect(replay).toEqual({ status: 302, location: '/login?error=invalid_state', session: null });
  });

  it('an unverified email', async () => {
    const mail = email();
    await refused(mail, await signIn(await providerUser({ email: mail, email_verified: false })), 'email_unverified');
  });

  it('a domain outside email_domains', async () => {
    const mail = `sso-${uniq()}@other.test`;
    await refused(mail, await signIn(await providerUser({ email: mail })), 'email_domain');
  });

  it('an existing account with the same email is not taken over while linking is off', async () => {
    const mail = email();
    const before = await call('POST', '/api/v2/users', {
      token: world.owner.token,
      body: { email: mail, username: `u${uniq()}`.slice(0, 60), password: 'correct horse battery' },
    });
    expect(before.status).toBe(201);
    const out = await signIn(await providerUser({ email: mail }));
    expect(out).toEqual({ status: 302, location: '/login?error=email_taken', session: null });
  });

  it('a redirect to another origin is refused before anything starts', async () => {
    const r = await getNoFollow(`/api/v2/auth/oidc/login?redirect=${encodeURIComponent('//evil.example/x')}`);
    expect(r.status).toBe(400);
  });
});

describe('require SSO for members', () => {
  it('refuses password login to members, never to owners; off again, members may use passwords', async () => {
    const mail = `pw-${uniq()}@example.com`;
    const made = await call('POST', '/api/v2/users', { token: world.owner.token, body: { email: mail, username: `pw${uniq()}`.slice(0, 60), password: 'a-good-password' } });
    expect(made.status).toBe(201);
    const ownerMail = `own-${uniq()}@example.com`;
    const owner = await call('POST', '/api/v2/users', { token: world.owner.token, body: { email: ownerMail, username: `ow${uniq()}`.slice(0, 60), password: 'a-good-password', roles: ['owner'] } });
    expect(owner.status).toBe(201);
    await configureSso({ require_sso_for_members: true });
    const refused = await call('POST', '/api/v2/users/login', { body: { email: mail, password: 'a-good-password' } });
    expect([refused.status, refused.body]).toEqual([403, { message: 'This deployment requires members to sign in with single sign-on.' }]);
    expect((await call('POST', '/api/v2/users/login', { body: { email: ownerMail, password: 'a-good-password' } })).status).toBe(201);
    await configureSso({ require_sso_for_members: false });
    expect((await call('POST', '/api/v2/users/login', { body: { email: mail, password: 'a-good-password' } })).status).toBe(201);
  });
});
