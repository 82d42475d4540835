/**
 * Web Push (RFC 8291 aes128gcm payloads, RFC 8292 VAPID) through @block65/webcrypto-web-push, which does both
 * with WebCrypto and runs on Workers (MIT; @pushforge/builder was rejected: it sends the legacy `aesgcm` draft).
 * VAPID keys are generated once and kept in site_configs, the private key sealed with the deployment's key ring.
 */
import { buildPushPayload } from '@block65/webcrypto-web-push';
import { z } from 'zod';
import type { Queryable } from '../lib/db';
import type { KeyRing } from '../lib/keyring';
import { getSiteConfig } from '../../sql/generated/site_configs.queries';
import { insertSiteConfigIfAbsent } from '../../sql/generated/webpush.queries';

export function toBase64Url(bytes: Uint8Array): string {
  let s = '';
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s).replaceAll('+', '-').replaceAll('/', '_').replace(/=+$/, '');
}

export function fromBase64Url(s: string): Uint8Array<ArrayBuffer> {
  const b64 = s.replaceAll('-', '+').replaceAll('_', '/');
  const bin = atob(b64 + '='.repeat((4 - (b64.length % 4)) % 4));
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

const base64url = (bytes: number, what: string) =>
  z
    .string()
    .regex(/^[A-Za-z0-9_-]+={0,2}$/, { message: `must be base64url` })
    .refine(
      (s) => {
        try {
          const b = fromBase64Url(s.replace(/=+$/, ''));
          return b.length === bytes && (what !== 'point' || b[0] === 4);
        } catch {
          return false;
        }
      },
      { message: what === 'point' ? 'must be an uncompressed P-256 public key (65 bytes, base64url)' : `must be ${bytes} bytes (base64url)` },
    );

const PRIVATE_V4 = [/^127\./, /^10\./, /^192\.168\./, /^172\.(1[6-9]|2\d|3[01])\./, /^169\.254\./, /^0\./, /^100\.(6[4-9]|[7-9]\d|1[01]\d|12[0-7])\./];

/** Whether a push endpoint's host is this machine or a private network (refused outside development). */
export function isPrivateHost(hostname: string): boolean {
  const h = hostname.replace(/^\[|\]$/g, '').toLowerCase();
  if (h === 'localhost' || h.endsWith('.localhost') || h.endsWith('.local') || h.endsWith('.internal')) return true;
  if (PRIVATE_V4.some((r) => r.test(h))) return true;
  return h === '::1' || h === '::' || /^f[cd][0-9a-f]{2}:/.test(h) || /^fe[89ab][0-9a-f]:/.test(h) || h.startsWith('::ffff:');
}

/** The subscription body, validated; `allowInsecure` (development only) admits http and private hosts. */
export function subscriptionSchema(allowInsecure: boolean) {
  return z
    .object({
      endpoint: z
        .url({ message: 'must be a URL' })
        .max(2048)
        .refine((u) => {
          const url = new URL(u);
          if (allowInsecure) return url.protocol === 'https:' || url.protocol === 'http:';
          return url.protocol === 'https:' && !isPrivateHost(url.hostname);
        }, { message: allowInsecure ? 'must be an http(s) URL' : 'must be an https URL on a public host' }),
      auth_key: base64url(16, 'auth'),
      p256dh_key: base64url(65, 'point'),
    })
    .strict();
}

export interface Subscription {
  id: string;
  endpoint: string;
  endpoint_p256dh_key: string;
  endpoint_auth_key: string;
}

export interface Vapid {
  publicKey: string;
  privateJWK: JsonWebKey & { d: string };
}

const StoredVapid = z.object({ public_key: z.string(), private: z.object({ ciphertext: z.string(), keyId: z.string() }) });
const VAPID_KEY = 'vapid_keys';
const BINDING = 'site_configs:vapid_keys';

/** The deployment's VAPID key pair: generated on first use, the same one for every caller after that. */
export async function vapidKeys(conn: Queryable, ring: KeyRing): Promise<Vapid> {
  let [row] = await getSiteConfig.run({ key: VAPID_KEY }, conn);
  if (!row) {
    const pair = (await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify'])) as CryptoKeyPair;
    const raw = new Uint8Array((await crypto.subtle.exportKey('raw', pair.publicKey)) as ArrayBuffer);
    const jwk = (await crypto.subtle.exportKey('jwk', pair.privateKey)) as JsonWebKey;
    const sealed = await ring.seal(JSON.stringify(jwk), BINDING);
    await insertSiteConfigIfAbsent.run({ key: VAPID_KEY, value: JSON.stringify({ public_key: toBase64Url(raw), private: sealed }) }, conn);
    [row] = await getSiteConfig.run({ key: VAPID_KEY }, conn);
    if (!row) throw new Error('VAPID keys vanished after being stored');
  }
  const stored = StoredVapid.parse(JSON.parse(row.value));
  const jwk = z.looseObject({ kty: z.literal('EC'), crv: z.literal('P-256'), d: z.string() }).parse(JSON.parse(await ring.open(stored.private, BINDING)));
  return { publicKey: stored.public_key, privateJWK: jwk };
}

export interface Notification {
  title: string;
  body: string;
  data: { url: string; chat_id: string | null };
}

/**
 * Sends one push; answers the push service's HTTP status (0 when it could not be reached). The library only
 * builds requests for https endpoints; an http endpoint (admitted in development only) is built as its https
 * twin, so its VAPID audience says https, and delivered over http.
 */
export async function sendPush(sub: Subscription, n: Notification, vapid: Vapid, contact: string): Promise<number> {
  const insecure = sub.endpoint.startsWith('http:');
  const req = await buildPushPayload(
    { data: { ...n }, options: { ttl: 3600, urgency: 'normal' } },
    {
      endpoint: insecure ? `https:${sub.endpoint.slice('http:'.length)}` : sub.endpoint,
      expirationTime: null,
      keys: { p256dh: sub.endpoint_p256dh_key, auth: sub.endpoint_auth_key },
    },
    { subject: contact, publicKey: vapid.publicKey, privateKey: vapid.privateJWK.d },
  );
  try {
    const res = await fetch(sub.endpoint, { method: req.method, headers: req.headers, body: req.body, signal: AbortSignal.timeout(10_000) });
    await res.body?.cancel();
    return res.status;
  } catch {
    return 0;
  }
}

/** Statuses that mean "this subscription is gone": the row is deleted. */
export const GONE = new Set([400, 403, 404, 410]);

/** The notification body: the final assistant text, shortened, or the error line. */
export function notificationBody(finalText: string, failed: boolean): string {
  if (failed) return 'Agent encountered an error.';
  const text = finalText.replace(/\s+/g, ' ').trim();
  if (!text) return 'Your chat is ready.';
  return text.length > 200 ? `${text.slice(0, 199).trimEnd()}…` : text;
}

/** The push object of a user. */
export const pushCenterName = (userId: string): string => `push-${userId}`;
