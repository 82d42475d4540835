/** Single sign-on in the Worker suites: the local OpenID provider (scripts/lib/oidc-provider.mjs) driven like a browser. */
import { env, exports } from 'cloudflare:workers';
import { expect } from 'vitest';
import { z } from 'zod';
import { call, makeOwner, sdk, testDb, uniq, type TestUser } from './helpers';

export const ISSUER = z.string().parse((env as unknown as Record<string, unknown>).OIDC_ISSUER_URL);

/** Adds a user to the provider; answers its id. */
export async function providerUser(u: { email: string; email_verified?: boolean; groups?: string[] }): Promise<string> {
  const id = `u${uniq()}`;
  const res = await fetch(`${ISSUER}/__control/users`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ id, email: u.email, email_verified: u.email_verified ?? true, groups: u.groups ?? [] }),
  });
  expect(res.status).toBe(200);
  return id;
}

export async function providerControl(path: string, body: unknown): Promise<void> {
  const res = await fetch(`${ISSUER}/__control/${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  expect(res.status).toBe(200);
}

/** A GET to the Worker that does not follow redirects (as a browser's first hop). */
export async function getNoFollow(path: string, cookie?: string): Promise<{ status: number; text: string; headers: Headers }> {
  const headers = new Headers();
  if (cookie !== undefined) headers.set('cookie', cookie);
  const res = await exports.default.fetch(`http://chatd.test${path}`, { headers, redirect: 'manual' });
  return { status: res.status, text: await res.text(), headers: res.headers };
}

function cookieOf(headers: Headers, name: string): string | null {
  for (const c of headers.getSetCookie()) {
    const [kv] = c.split(';');
    const i = (kv ?? '').indexOf('=');
    if (kv && kv.slice(0, i) === name && kv.slice(i + 1) !== '') return kv.slice(i + 1);
  }
  return null;
}

export interface Started {
  flowCookie: string;
  /** The provider's redirect back to us (http://chatd.test/api/v2/auth/oidc/callback?code=..&state=..). */
  callback: URL;
}

/** Starts a sign-in at the Worker and signs in at the provider as `userId`; stops before the callback. */
export async function throughProvider(userId: string, redirect = '/chats'): Promise<Started> {
  const start = await getNoFollow(`/api/v2/auth/oidc/login?redirect=${encodeURIComponent(redirect)}`);
  expect([start.status, start.text]).toEqual([302, '']);
  const flowCookie = cookieOf(start.headers, 'oidc_flow');
  expect(flowCookie).toMatch(/^[A-Za-z0-9]{43}$/);
  const auth = new URL(z.string().parse(start.headers.get('location')));
  expect(auth.origin).toBe(ISSUER);
  expect(auth.searchParams.get('code_challenge_method')).toBe('S256');
  auth.searchParams.set('login_hint', userId);
  const jar = new Map<string, string>();
  let url = auth.href;
  for (let i = 0; i < 8; i++) {
    const res = await fetch(url, { redirect: 'manual', headers: { cookie: [...jar].map(([k, v]) => `${k}=${v}`).join('; ') } });
    for (const c of res.headers.getSetCookie()) {
      const [kv] = c.split(';');
      const at = (kv ?? '').indexOf('=');
      if (kv) jar.set(kv.slice(0, at), kv.slice(at + 1));
    }
    const next = res.headers.get('location');
    if (!next) throw new Error(`the provider stopped at ${res.status}: ${await res.text()}`);
    url = new URL(next, url).href;
    if (url.startsWith('http://chatd.test/')) return { flowCookie: flowCookie ?? '', callback: new URL(url) };
  }
  throw new Error('the provider redirected too many times');
}

export interface Finished {
  status: number;
  location: string;
  session: string | null;
}

/** The browser's return to the Worker's callback. */
export async function callback(s: Started, o: { cookie?: string | null; url?: URL } = {}): Promise<Finished> {
  const u = o.url ?? s.callback;
  const cookie = o.cookie === undefined ? `oidc_flow=${s.flowCookie}` : o.cookie;
  const res = await getNoFollow(`${u.pathname}${u.search}`, cookie === null ? undefined : cookie);
  return { status: res.status, location: res.headers.get('location') ?? '', session: cookieOf(res.headers, 'session_token') };
}

export async function signIn(userId: string): Promise<Finished> {
  return await callback(await throughProvider(userId));
}

export async function userByEmail(email: string): Promise<{ id: string; roles: string[] } | null> {
  const db = testDb();
  try {
    const r = await db.query('SELECT id, roles FROM users WHERE lower(email) = lower($1)', [email]);
    return (r.rows[0] as { id: string; roles: string[] } | undefined) ?? null;
  } finally {
    await db.close();
  }
}

export interface SsoWorld {
  owner: TestUser;
  engineering: string;
  staff: string;
}

/** An owner, two groups, and single sign-on set to the local provider (auto-created members from example.com). */
export async function configureSso(extra: Record<string, unknown> = {}): Promise<SsoWorld> {
  const owner = await makeOwner();
  const engineering = (await sdk(owner.token).createGroup({ name: `eng-${uniq()}` })).id;
  const staff = (await sdk(owner.token).createGroup({ name: `staff-${uniq()}` })).id;
  const put = await call('PUT', '/api/v2/auth/oidc', {
    token: owner.token,
    body: {
      enabled: true,
      display_name: 'Local',
      issuer: ISSUER,
      client_id: 'chatd-local',
      client_secret: 'chatd-local-secret-not-for-production',
      scopes: ['openid', 'email', 'profile', 'groups'],
      email_domains: ['example.com'],
      groups_claim: 'groups',
      group_mapping: { engineering, staff },
      auto_create_users: true,
      ...extra,
    },
  });
  expect(put.status).toBe(200);
  return { owner, engineering, staff };
}
