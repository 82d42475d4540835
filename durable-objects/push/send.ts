/**
 * Sending one Web Push (RFC 8291 aes128gcm payloads, RFC 8292 VAPID) through @block65/webcrypto-web-push, which does
 * both with WebCrypto and runs on Workers (MIT; @pushforge/builder was rejected: it sends the legacy `aesgcm` draft).
 */
import { buildPushPayload } from '@block65/webcrypto-web-push';
import type { Subscription, Vapid } from '../../functions/core/webpush';

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
  try {
    // Inside the try: a stored key the encryption refuses is one failed push, not an exception for the caller.
    const req = await buildPushPayload(
      { data: { ...n }, options: { ttl: 3600, urgency: 'normal' } },
      {
        endpoint: insecure ? `https:${sub.endpoint.slice('http:'.length)}` : sub.endpoint,
        expirationTime: null,
        keys: { p256dh: sub.endpoint_p256dh_key, auth: sub.endpoint_auth_key },
      },
      { subject: contact, publicKey: vapid.publicKey, privateKey: vapid.privateJWK.d },
    );
    // Redirects are not followed: a push service never answers with one, and following it would let an endpoint
    // send us anywhere. A 3xx counts as a failure.
    const res = await fetch(sub.endpoint, {
      method: req.method,
      headers: req.headers,
      body: req.body,
      redirect: 'manual',
      signal: AbortSignal.timeout(10_000),
    });
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

