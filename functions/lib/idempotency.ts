/**
 * `Idempotency-Key` on `POST /chats` and `POST /chats/{id}/messages`: a client that retries after a timeout or a
 * 503 sends the same key, and gets the first response instead of a second chat or message.
 */
import { z } from '@hono/zod-openapi';
import { sha256Hex } from '../core/crypto';

/** 1–128 visible ASCII characters (a UUID is the usual choice). */
export const IdempotencyKey = z
  .string()
  .regex(/^[\x21-\x7e]{1,128}$/, { message: 'must be 1-128 visible ASCII characters' })
  .openapi({ param: { name: 'idempotency-key', in: 'header' }, description: 'Makes a retry of this request safe: a repeat with the same key returns the first response.' });

export const IdempotencyHeaders = z.object({ 'idempotency-key': IdempotencyKey.optional() });

/**
 * The id of the chat a `POST /chats` with this key creates: derived from the user and the key (SHA-256, formatted as
 * a version 8 UUID), so a replay reaches the same chat object, which answers with the first response.
 */
export async function chatIdForKey(userId: string, key: string): Promise<string> {
  const h = await sha256Hex(`chatd-edge/chat\u0000${userId}\u0000${key}`);
  const variant = ((parseInt(h.charAt(16), 16) & 0x3) | 0x8).toString(16);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-8${h.slice(13, 16)}-${variant}${h.slice(17, 20)}-${h.slice(20, 32)}`;
}
