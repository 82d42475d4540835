import { env } from 'cloudflare:workers';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { pushCenterName } from '../../functions/core/webpush';
import { SubscriptionCache } from '../../durable-objects/push/subscription-cache';
import { fromBase64Url, subscriptionSchema, toBase64Url } from '../../functions/core/webpush';
import { notificationBody } from '../../durable-objects/push/send';
import { call, ErrorBody, makeUser, roomOf, sdk, streamOf, testDb, testEnv, watch, within } from './helpers';

const encoder = new TextEncoder();
const enc = { encode: (s: string): Uint8Array<ArrayBuffer> => new Uint8Array(encoder.encode(s)) };
const concat = (...parts: Uint8Array[]): Uint8Array<ArrayBuffer> => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
};

/** A browser-side subscriber: an ECDH key pair and an auth secret, as PushManager makes them. */
async function subscriber() {
  const pair = (await crypto.subtle.generateKey({ name: 'ECDH', namedCurve: 'P-256' }, true, ['deriveBits'])) as CryptoKeyPair;
  const pub = new Uint8Array((await crypto.subtle.exportKey('raw', pair.publicKey)) as ArrayBuffer);
  const auth = crypto.getRandomValues(new Uint8Array(16));
  return { pair, pub, auth, p256dh_key: toBase64Url(pub), auth_key: toBase64Url(auth) };
}
type Subscriber = Awaited<ReturnType<typeof subscriber>>;

async function hkdf(salt: Uint8Array<ArrayBuffer>, ikm: Uint8Array<ArrayBuffer>, info: Uint8Array<ArrayBuffer>, bytes: number) {
  const key = await crypto.subtle.importKey('raw', ikm, 'HKDF', false, ['deriveBits']);
  return new Uint8Array(await crypto.subtle.deriveBits({ name: 'HKDF', hash: 'SHA-256', salt, info }, key, bytes * 8));
}

/** RFC 8291 (aes128gcm) decryption with the subscriber's private key. */
async function decrypt(body: Uint8Array<ArrayBuffer>, s: Subscriber): Promise<string> {
  const salt = body.slice(0, 16);
  const idlen = body[20] ?? 0;
  const asPublic = body.slice(21, 21 + idlen);
  const ciphertext = body.slice(21 + idlen);
  const asKey = await crypto.subtle.importKey('raw', asPublic, { name: 'ECDH', namedCurve: 'P-256' }, false, []);
  // workerd's types spell the ECDH field `$public`; at run time it is the standard `public`.
  const ecdh = { name: 'ECDH', public: asKey } as unknown as SubtleCryptoDeriveKeyAlgorithm;
  const shared = new Uint8Array(await crypto.subtle.deriveBits(ecdh, s.pair.privateKey, 256));
  const ikm = await hkdf(s.auth, shared, concat(enc.encode('WebPush: info\0'), s.pub, asPublic), 32);
  const cek = await hkdf(salt, ikm, enc.encode('Content-Encoding: aes128gcm\0'), 16);
  const nonce = await hkdf(salt, ikm, enc.encode('Content-Encoding: nonce\0'), 12);
  const key = await crypto.subtle.importKey('raw', cek, 'AES-GCM', false, ['decrypt']);
  const plain = new Uint8Array(await crypto.subtle.decrypt({ name: 'AES-GCM', iv: nonce }, key, ciphertext));
  let end = plain.length - 1;
  while (end > 0 && plain[end] === 0) end--;
  expect(plain[end]).toBe(2); // the last record's delimiter
  return new TextDecoder().decode(plain.slice(0, end));
}

/** Checks the VAPID Authorization header (RFC 8292): ES256 signature by `k`, and the claims. */
async function verifyVapid(authorization: string, endpoint: string, publicKey: string) {
  const m = /^vapid t=([^,]+),\s*k=(.+)$/.exec(authorization);
  expect(m).not.toBeNull();
  const [, jwt = '', k = ''] = m ?? [];
  expect(k).toBe(publicKey);
  const [h = '', p = '', sig = ''] = jwt.split('.');
  const key = await crypto.subtle.importKey('raw', fromBase64Url(k), { name: 'ECDSA', namedCurve: 'P-256' }, false, ['verify']);
  const valid = await crypto.subtle.verify({ name: 'ECDSA', hash: 'SHA-256' }, key, fromBase64Url(sig), enc.encode(`${h}.${p}`));
  expect(valid).toBe(true);
  expect(JSON.parse(new TextDecoder().decode(fromBase64Url(h)))).toMatchObject({ alg: 'ES256', typ: 'JWT' });
  const claims = z.object({ aud: z.string(), exp: z.number(), sub: z.string() }).parse(JSON.parse(new TextDecoder().decode(fromBase64Url(p))));
  // Development-only http endpoints are signed as their https twin.
  expect(claims.aud).toBe(new URL(endpoint.replace(/^http:/, 'https:')).origin);
  expect(claims.exp * 1000).toBeGreaterThan(Date.now());
  expect(claims.exp * 1000).toBeLessThanOrEqual(Date.now() + 24 * 3600 * 1000 + 60_000);
  expect(claims.sub).toMatch(/^mailto:/);
}

const Pushed = z.array(z.object({ path: z.string(), headers: z.record(z.string(), z.unknown()), body: z.string() }));
async function pushesTo(id: string) {
  const all = Pushed.parse(await (await fetch(`${testEnv.PUSH_SERVER_URL}/__requests`)).json());
  return all.filter((r) => r.path.endsWith(`/${id}`));
}
async function waitForPushes(id: string, n: number) {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const got = await pushesTo(id);
    if (got.length >= n) return got;
    if (Date.now() > deadline) throw new Error(`expected ${n} pushes to ${id}, got ${got.length}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
const bodyBytes = (b64: string) => Uint8Array.from(atob(b64), (ch) => ch.charCodeAt(0));

async function subscribe(token: string, status = 201) {
  const id = crypto.randomUUID();
  const s = await subscriber();
  const endpoint = `${testEnv.PUSH_SERVER_URL}/push/${status}/${id}`;
  const r = await call('POST', '/api/v2/users/me/webpush/subscription', { token, body: { endpoint, auth_key: s.auth_key, p256dh_key: s.p256dh_key } });
  expect(r.status, r.text).toBe(204);
  return { id, s, endpoint };
}

const publicKey = async () =>
  z.object({ public_key: z.string() }).parse((await call('GET', '/api/v2/webpush/vapid')).body).public_key;

describe('VAPID and subscriptions', () => {
  it('serves one public key, an uncompressed P-256 point, generated once', async () => {
    const a = await publicKey();
    const b = await publicKey();
    expect(a).toBe(b);
    const raw = fromBase64Url(a);
    expect(raw.length).toBe(65);
    expect(raw[0]).toBe(4);
    const db = testDb();
    const row = await db.query("SELECT value FROM site_configs WHERE key = 'vapid_keys'", []);
    await db.close();
    expect(JSON.stringify(row.rows)).not.toMatch(/"d":/); // the private key is sealed
  });

  it('validates subscriptions: keys, and https on public hosts outside development', async () => {
    const u = await makeUser();
    const s = await subscriber();
    for (const body of [
      { endpoint: 'ftp://push.example.com/x', auth_key: s.auth_key, p256dh_key: s.p256dh_key },
      { endpoint: 'https://push.example.com/x', auth_key: 'short', p256dh_key: s.p256dh_key },
      { endpoint: 'https://push.example.com/x', auth_key: s.auth_key, p256dh_key: toBase64Url(new Uint8Array(65)) },
      { endpoint: 'https://push.example.com/x', auth_key: s.auth_key },
    ]) {
      const r = await call('POST', '/api/v2/users/me/webpush/subscription', { token: u.token, body });
      expect(r.status, JSON.stringify(body)).toBe(400);
      ErrorBody.parse(r.body);
    }
    expect((await call('POST', '/api/v2/users/me/webpush/subscription', { body: {} })).status).toBe(401);
    const prod = subscriptionSchema({ allowInsecure: false, extraHosts: [] });
    const ok = { auth_key: s.auth_key, p256dh_key: s.p256dh_key };
    expect((await prod.safeParseAsync({ ...ok, endpoint: 'https://fcm.googleapis.com/fcm/send/abc' })).success).toBe(true);
    for (const endpoint of ['http://fcm.googleapis.com/x', 'https://127.0.0.1/x', 'https://10.1.2.3/x', 'https://192.168.1.1/x', 'https://[::1]/x', 'https://localhost/x', 'https://172.20.0.1/x']) {
      expect((await prod.safeParseAsync({ ...ok, endpoint })).success, endpoint).toBe(false);
    }
    const db = testDb();
    const n = await db.query('SELECT count(*)::int AS n FROM webpush_subscriptions WHERE user_id = $1', [u.user.id]);
    await db.close();
    expect(n.rows[0]).toEqual({ n: 0 });
  });
});

describe('pushes when a turn ends', () => {
  it('sends the final text, encrypted per RFC 8291 and signed per RFC 8292', async () => {
    const u = await makeUser();
    const sub = await subscribe(u.token);
    const chat = await sdk(u.token).createChat({ content: 'notify me' });
    await roomOf(chat.id).idle();
    const [push] = await waitForPushes(sub.id, 1);
    if (!push) throw new Error('no push');
    expect(push.headers['content-encoding']).toBe('aes128gcm');
    const payload = JSON.parse(await decrypt(bodyBytes(push.body), sub.s)) as unknown;
    expect(payload).toEqual({ title: chat.title, body: 'Echo: notify me', data: { url: `/chats/${chat.id}`, chat_id: chat.id } });
    await verifyVapid(String(push.headers.authorization), sub.endpoint, await publicKey());
  });

  it('says so when the turn failed', async () => {
    const u = await makeUser();
    const sub = await subscribe(u.token);
    await roomOf((await sdk(u.token).createChat({ content: 'boom [[mock error_status=500]]' })).id).idle();
    const [push] = await waitForPushes(sub.id, 1);
    const payload = z.object({ body: z.string() }).loose().parse(JSON.parse(await decrypt(bodyBytes(push?.body ?? ''), sub.s)));
    expect(payload.body).toBe('Agent encountered an error.');
  });

  it('deletes a subscription whose push service answers 410', async () => {
    const u = await makeUser();
    const gone = await subscribe(u.token, 410);
    await roomOf((await sdk(u.token).createChat({ content: 'hello' })).id).idle();
    await waitForPushes(gone.id, 1);
    const db = testDb();
    let n = 1;
    for (let i = 0; i < 100 && n > 0; i++) {
      const q = await db.query('SELECT count(*)::int AS n FROM webpush_subscriptions WHERE user_id = $1', [u.user.id]);
      n = z.object({ n: z.number() }).parse(q.rows[0]).n;
      if (n > 0) await new Promise((res) => setTimeout(res, 20));
    }
    await db.close();
    expect(n).toBe(0);
  });

  it('reads subscriptions once: the second dispatch is a cache hit', async () => {
    const u = await makeUser();
    const sub = await subscribe(u.token);
    const chat = await sdk(u.token).createChat({ content: 'one' });
    await roomOf(chat.id).idle();
    await waitForPushes(sub.id, 1);
    await sdk(u.token).sendMessage(chat.id, { content: 'two' });
    await roomOf(chat.id).idle();
    await waitForPushes(sub.id, 2);
    const stats = await env.PUSH_CENTER.getByName(pushCenterName(u.user.id)).cacheStats();
    expect(stats.fetches).toBe(1);
    expect(stats.hits).toBeGreaterThanOrEqual(1);
  });

  it('honours the opt-out (the test notification still goes out), and unsubscribe', async () => {
    const u = await makeUser();
    const sub = await subscribe(u.token);
    expect((await call('GET', '/api/v2/users/me/webpush/settings', { token: u.token })).body).toEqual({ enabled: true });
    expect((await call('PUT', '/api/v2/users/me/webpush/settings', { token: u.token, body: { enabled: false } })).body).toEqual({ enabled: false });
    await roomOf((await sdk(u.token).createChat({ content: 'quiet' })).id).idle();
    expect((await call('POST', '/api/v2/users/me/webpush/test', { token: u.token })).status).toBe(204);
    const [only] = await waitForPushes(sub.id, 1);
    await new Promise((res) => setTimeout(res, 200));
    expect(await pushesTo(sub.id)).toHaveLength(1);
    const payload = z.object({ body: z.string() }).loose().parse(JSON.parse(await decrypt(bodyBytes(only?.body ?? ''), sub.s)));
    expect(payload.body).toMatch(/Test notification/);
    const un = await call('DELETE', '/api/v2/users/me/webpush/subscription', { token: u.token, body: { endpoint: sub.endpoint } });
    expect(un.status).toBe(204);
    await call('POST', '/api/v2/users/me/webpush/test', { token: u.token });
    await new Promise((res) => setTimeout(res, 200));
    expect(await pushesTo(sub.id)).toHaveLength(1);
  });

  it('skips the push while the owner watches the chat', async () => {
    const u = await makeUser();
    const sub = await subscribe(u.token);
    const chat = await sdk(u.token).createChat({ content: 'first' });
    await roomOf(chat.id).idle();
    await waitForPushes(sub.id, 1);
    const s = streamOf(chat.id, u.token);
    const seen = watch(s);
    await s.until((x) => x.connected, within);
    await sdk(u.token).sendMessage(chat.id, { content: 'watched' });
    await s.until((x) => x.messages.length === 4 && seen.turnEnded(), within);
    await new Promise((res) => setTimeout(res, 200));
    expect(await pushesTo(sub.id)).toHaveLength(1);
    await s.close();
  });
});

describe('subscription cache', () => {
  it('an invalidation that lands during a slow fetch wins: the stale result is not stored', async () => {
    let release: (v: string[]) => void = () => undefined;
    let calls = 0;
    const cache = new SubscriptionCache<string>(() => {
      calls += 1;
      return calls === 1 ? new Promise<string[]>((r) => (release = r)) : Promise.resolve(['fresh']);
    });
    const slow = cache.get('u');
    cache.invalidate('u'); // a subscribe lands while the first read is in flight
    release(['stale']);
    expect(await slow).toEqual(['stale']); // the caller that asked before gets what it asked for...
    expect(await cache.get('u')).toEqual(['fresh']); // ...but it was never stored
    expect(cache.stats).toMatchObject({ fetches: 2, staleDiscarded: 1 });
  });

  it('single-flights concurrent misses and expires after its TTL', async () => {
    let now = 0;
    let calls = 0;
    const cache = new SubscriptionCache<number>(() => Promise.resolve([++calls]), 1000, () => now);
    const [a, b] = await Promise.all([cache.get('u'), cache.get('u')]);
    expect(a).toEqual([1]);
    expect(b).toEqual([1]);
    expect(await cache.get('u')).toEqual([1]);
    now = 1001;
    expect(await cache.get('u')).toEqual([2]);
    expect(cache.stats).toMatchObject({ fetches: 2, hits: 1 });
  });

  it('shortens bodies', () => {
    expect(notificationBody('x'.repeat(500), false)).toHaveLength(200);
    expect(notificationBody('  hi  there ', false)).toBe('hi there');
    expect(notificationBody('anything', true)).toBe('Agent encountered an error.');
  });
});
