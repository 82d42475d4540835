/**
 * Web Push, the parts both sides use: subscriptions (their shape and the endpoint policy), the deployment's VAPID keys
 * (generated once and kept in site_configs, the private key sealed with the deployment's key ring), and the names and
 * limits of the per-user PushCenter. Sending is the PushCenter's (durable-objects/push/send.ts).
 */
import { z } from 'zod';
import type { Queryable } from './db';
import type { KeyRing } from './keyring';
import { outboundUrlProblem } from './url-policy';
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

const decoded = (s: string): Uint8Array<ArrayBuffer> | null => {
  try {
    return fromBase64Url(s.replace(/=+$/, ''));
  } catch {
    return null;
  }
};
const Base64Url = z.string().regex(/^[A-Za-z0-9_-]+={0,2}$/, { message: 'must be base64url' });
const AuthSecret = Base64Url.refine((s) => decoded(s)?.length === 16, { message: 'must be 16 bytes (base64url)' });
/** The browser's ECDH key: 65 bytes, and a point on the curve (the encryption would throw on any other). */
const P256Point = Base64Url.refine(
  async (s) => {
    const b = decoded(s);
    if (b?.length !== 65 || b[0] !== 4) return false;
    try {
      await crypto.subtle.importKey('raw', b, { name: 'ECDH', namedCurve: 'P-256' }, false, []);
      return true;
    } catch {
      return false;
    }
  },
  { message: 'must be an uncompressed P-256 public key (65 bytes, base64url)' },
);

/**
 * The push services' hosts a subscription may point at by default (a `*.` entry admits any subdomain): Google FCM
 * (Chrome, Edge on Android...), Mozilla autopush (Firefox), Apple (Safari) and Windows (WNS). Anything else, in
 * particular this machine, private networks, cloud metadata and any name that resolves to them, is refused, so
 * the push sender cannot be aimed at internal hosts. WEBPUSH_ALLOWED_HOSTS adds entries.
 */
export const DEFAULT_PUSH_HOSTS: readonly string[] = [
  'fcm.googleapis.com',
  'updates.push.services.mozilla.com',
  '*.push.services.mozilla.com',
  '*.push.apple.com',
  '*.notify.windows.com',
];

/** At most this many subscriptions per user (a test notification goes to all of them). */
export const MAX_SUBSCRIPTIONS = 20;

export interface EndpointPolicy {
  /** Development only: any http(s) URL. */
  allowInsecure: boolean;
  /** Host entries admitted on top of DEFAULT_PUSH_HOSTS. */
  extraHosts: readonly string[];
}

/** Why a push endpoint is refused, or null when it is acceptable (the rules of functions/core/url-policy.ts). */
export function endpointProblem(endpoint: string, policy: EndpointPolicy): string | null {
  return outboundUrlProblem(endpoint, { allowInsecure: policy.allowInsecure, allowedHosts: [...DEFAULT_PUSH_HOSTS, ...policy.extraHosts] });
}

/** The subscription body, validated against the deployment's endpoint policy (asynchronous: use safeParseAsync). */
export function subscriptionSchema(policy: EndpointPolicy) {
  return z
    .object({
      endpoint: z
        .string()
        .max(2048)
        .superRefine((u, ctx) => {
          const problem = endpointProblem(u, policy);
          if (problem !== null) ctx.addIssue({ code: 'custom', message: problem });
        }),
      auth_key: AuthSecret,
      p256dh_key: P256Point,
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

/** The push object of a user. */
export const pushCenterName = (userId: string): string => `push-${userId}`;

/** Test notifications a user may ask for: at most TEST_LIMIT in any TEST_WINDOW_MS (each reaches every device). */
export const TEST_LIMIT = 5;
export const TEST_WINDOW_MS = 10 * 60_000;
