import { randomString, sha256Hex } from '../core/crypto';

/** Tokens look like `<id>-<secret>`: a 10-character lookup id and a 22-character secret. */
const TOKEN = /^([a-z0-9]{10})-([A-Za-z0-9]{22})$/;

export interface NewToken {
  id: string;
  token: string;
  hashedSecret: string;
}

/** Mints a token; only `hashedSecret` is ever stored. */
export async function mintToken(): Promise<NewToken> {
  const id = randomString(10, 'abcdefghijklmnopqrstuvwxyz0123456789');
  const secret = randomString(22);
  return { id, token: `${id}-${secret}`, hashedSecret: await sha256Hex(secret) };
}

/** Splits a presented token; null when it is not of our shape. */
export function parseToken(token: string): { id: string; secret: string } | null {
  const m = TOKEN.exec(token);
  return m?.[1] && m[2] ? { id: m[1], secret: m[2] } : null;
}
