/**
 * Web Push as an attack surface: endpoints are parsed before use and must be a known push service (no SSRF into
 * this machine, private networks or metadata services), redirects are not followed, subscriptions are capped per
 * user, and the test notification is rate-limited per user.
 */
import { env } from 'cloudflare:workers';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { TEST_LIMIT, TEST_WINDOW_MS } from '../../functions/core/webpush';
import { endpointProblem, MAX_SUBSCRIPTIONS, toBase64Url } from '../../functions/core/webpush';
import { call, ErrorBody, makeUser, testDb, testEnv } from './helpers';

/** A browser's keys (nothing is decrypted here). */
const keys = async () => {
  const pair = (await crypto.subtle.generateKey({ name: 'ECDH', namedCurve: 'P-256' }, true, ['deriveBits'])) as CryptoKeyPair;
  const point = new Uint8Array((await crypto.subtle.exportKey('raw', pair.publicKey)) as ArrayBuffer);
  return { auth_key: toBase64Url(crypto.getRandomValues(new Uint8Array(16))), p256dh_key: toBase64Url(point) };
};
/** The deployment as in production: no http, no private hosts. */
const prodEnv: Env = { ...env, WEBPUSH_ALLOW_INSECURE_ENDPOINTS: 'false' };

async function subscriptionsOf(userId: string): Promise<string[]> {
  const db = testDb();
  try {
    const r = await db.query('SELECT endpoint FROM webpush_subscriptions WHERE user_id = $1 ORDER BY endpoint', [userId]);
    return r.rows.map((x) => z.object({ endpoint: z.string() }).parse(x).endpoint);
  } finally {
    await db.close();
  }
}

const subscribe = async (token: string, endpoint: string, e?: Env) =>
  await call('POST', '/api/v2/users/me/webpush/subscription', { token, body: { endpoint, ...(await keys()) }, ...(e ? { env: e } : {}) });

const SSRF = [
  'not a url',
  '',
  'https://',
  'http://fcm.googleapis.com/fcm/send/x',
  'ftp://fcm.googleapis.com/x',
  'javascript:alert(1)',
  'https://localhost/x',
  'https://localhost./x',
  'https://x.internal./x',
  'https://metadata.google.internal/computeMetadata/v1/',
  'https://127.0.0.1/x',
  'https://127.1/x',
  'https://0x7f000001/x',
  'https://2130706433/x',
  'https://0177.0.0.1/x',
  'https://10.0.0.1/x',
  'https://169.254.169.254/latest/meta-data/',
  'https://198.18.0.1/x',
  'https://224.0.0.1/x',
  'https://0.0.0.0/x',
  'https://[::1]/x',
  'https://[::]/x',
  'https://[::7f00:1]/x',
  'https://[::ffff:127.0.0.1]/x',
  'https://[64:ff9b::7f00:1]/x',
  'https://[fec0::1]/x',
  'https://[fd00::1]/x',
  'https://[fe80::1]/x',
  'https://localtest.me/x',
  'https://127.0.0.1.nip.io/x',
  'https://fcm.googleapis.com./x',
  'https://fcm.googleapis.com.evil.example/x',
  'https://evilfcm.googleapis.com/x',
  'https://push.apple.com/x',
  'https://x.push.apple.com:8443/x',
  'https://user:pw@fcm.googleapis.com/x',
  'https://fcm.googleapis.com@127.0.0.1/x',
  `https://fcm.googleapis.com/${'x'.repeat(2048)}`,
];

describe('push endpoints', () => {
  it('a URL that does not parse is a 400 with validations, not a 500 (development setting too)', async () => {
    const u = await makeUser();
    for (const e of [env, prodEnv]) {
      const r = await subscribe(u.token, 'not a url', e);
      expect(r.status, r.text).toBe(400);
      expect(ErrorBody.parse(r.body).validations).toEqual([{ field: 'endpoint', detail: 'must be a URL' }]);
    }
    expect(await subscriptionsOf(u.user.id)).toEqual([]);
  });

  it('a key that is not a point on P-256 is refused at subscribe, never a 500 when sending', async () => {
    const u = await makeUser();
    const point = new Uint8Array(65).fill(7);
    point[0] = 4;
    const body = { endpoint: `${testEnv.PUSH_SERVER_URL}/push/201/${crypto.randomUUID()}`, ...(await keys()), p256dh_key: toBase64Url(point) };
    const r = await call('POST', '/api/v2/users/me/webpush/subscription', { token: u.token, body });
    expect(r.status).toBe(400);
    expect(ErrorBody.parse(r.body).validations?.[0]?.field).toBe('p256dh_key');
    // One stored before this check existed: the test notification reports it as failed, not a 500.
    const db = testDb();
    await db.query('INSERT INTO webpush_subscriptions (user_id, endpoint, endpoint_p256dh_key, endpoint_auth_key) VALUES ($1, $2, $3, $4)', [
      u.user.id,
      body.endpoint,
      body.p256dh_key,
      body.auth_key,
    ]);
    await db.close();
    expect((await call('POST', '/api/v2/users/me/webpush/test', { token: u.token })).status).toBe(204);
  });

  it.each(SSRF)('refuses %j with 400 and stores nothing', async (endpoint) => {
    const u = await makeUser();
    const r = await subscribe(u.token, endpoint, prodEnv);
    expect(r.status, r.text).toBe(400);
    expect(ErrorBody.parse(r.body).validations?.[0]?.field).toBe('endpoint');
    expect(await subscriptionsOf(u.user.id)).toEqual([]);
  });

  it('accepts the real push services, and hosts added by WEBPUSH_ALLOWED_HOSTS', () => {
    const policy = { allowInsecure: false, extraHosts: [] };
    for (const endpoint of [
      'https://fcm.googleapis.com/fcm/send/abc:def',
      'https://updates.push.services.mozilla.com/wpush/v2/gAAAA',
      'https://updates-autopush.stage.mozaws.net.push.services.mozilla.com/x',
      'https://web.push.apple.com/QGp1',
      'https://api.push.apple.com/x',
      'https://wns2-par02p.notify.windows.com/w/?token=abc',
    ]) {
      expect(endpointProblem(endpoint, policy), endpoint).toBeNull();
    }
    expect(endpointProblem('https://push.example.com/x', policy)).not.toBeNull();
    const extended = { allowInsecure: false, extraHosts: ['push.example.com', '*.push.example.org'] };
    expect(endpointProblem('https://push.example.com/x', extended)).toBeNull();
    expect(endpointProblem('https://eu.push.example.org/x', extended)).toBeNull();
    expect(endpointProblem('https://push.example.org/x', extended)).not.toBeNull();
    // An IP literal stays refused even when someone lists it.
    expect(endpointProblem('https://10.0.0.1/x', { allowInsecure: false, extraHosts: ['10.0.0.1'] })).not.toBeNull();
  });

  it('WEBPUSH_ALLOWED_HOSTS reaches the route', async () => {
    const u = await makeUser();
    const extended: Env = { ...prodEnv, WEBPUSH_ALLOWED_HOSTS: 'push.example.com' };
    expect((await subscribe(u.token, 'https://push.example.com/x', prodEnv)).status).toBe(400);
    expect((await subscribe(u.token, 'https://push.example.com/x', extended)).status).toBe(204);
    expect(await subscriptionsOf(u.user.id)).toEqual(['https://push.example.com/x']);
  });
});

describe('sending', () => {
  it('does not follow a redirect: the push counts as failed and the target is never reached', async () => {
    const u = await makeUser();
    const id = crypto.randomUUID();
    expect((await subscribe(u.token, `${testEnv.PUSH_SERVER_URL}/push/302/${id}`)).status).toBe(204);
    expect((await call('POST', '/api/v2/users/me/webpush/test', { token: u.token })).status).toBe(204);
    const all = z.array(z.object({ path: z.string() })).parse(await (await fetch(`${testEnv.PUSH_SERVER_URL}/__requests`)).json());
    expect(all.filter((r) => r.path === `/push/302/${id}`)).toHaveLength(1);
    expect(all.filter((r) => r.path.includes(`followed-${id}`))).toEqual([]);
    expect(await subscriptionsOf(u.user.id)).toHaveLength(1); // a failure, not "gone"
  });

  it(`rate-limits the test notification: ${TEST_LIMIT} per window, then 429 with Retry-After`, async () => {
    const u = await makeUser();
    for (let i = 0; i < TEST_LIMIT; i++) {
      expect((await call('POST', '/api/v2/users/me/webpush/test', { token: u.token })).status).toBe(204);
    }
    const r = await call('POST', '/api/v2/users/me/webpush/test', { token: u.token });
    expect(r.status).toBe(429);
    expect(ErrorBody.parse(r.body).message).toMatch(/too many test notifications/i);
    const wait = Number(r.headers.get('retry-after'));
    expect(wait).toBeGreaterThan(0);
    expect(wait).toBeLessThanOrEqual(TEST_WINDOW_MS / 1000);
    // Another user is not affected.
    const other = await makeUser();
    expect((await call('POST', '/api/v2/users/me/webpush/test', { token: other.token })).status).toBe(204);
  });
});

describe('the subscription cap', () => {
  const endpoint = (i: number | string) => `${testEnv.PUSH_SERVER_URL}/push/201/cap-${i}`;

  it(`keeps at most ${MAX_SUBSCRIPTIONS} per user; re-subscribing a known endpoint still works`, async () => {
    const u = await makeUser();
    for (let i = 0; i < MAX_SUBSCRIPTIONS; i++) expect((await subscribe(u.token, endpoint(i))).status).toBe(204);
    const over = await subscribe(u.token, endpoint('over'));
    expect(over.status).toBe(409);
    expect(ErrorBody.parse(over.body).message).toBe(`At most ${MAX_SUBSCRIPTIONS} Web Push subscriptions per user: unsubscribe one first.`);
    expect((await subscribe(u.token, endpoint(3))).status).toBe(204);
    expect(await subscriptionsOf(u.user.id)).toHaveLength(MAX_SUBSCRIPTIONS);
    const del = await call('DELETE', '/api/v2/users/me/webpush/subscription', { token: u.token, body: { endpoint: endpoint(0) } });
    expect(del.status).toBe(204);
    expect((await subscribe(u.token, endpoint('over'))).status).toBe(204);
  });

  it('holds under concurrent subscribes', async () => {
    const u = await makeUser();
    const results = await Promise.all(Array.from({ length: MAX_SUBSCRIPTIONS + 8 }, (_, i) => subscribe(u.token, endpoint(`c${i}`))));
    const statuses = results.map((r) => r.status);
    expect(statuses.filter((s) => s === 204)).toHaveLength(MAX_SUBSCRIPTIONS);
    expect(statuses.filter((s) => s === 409)).toHaveLength(8);
    expect(await subscriptionsOf(u.user.id)).toHaveLength(MAX_SUBSCRIPTIONS);
  });
});
