/**
 * Encryption of secrets at rest (LLM provider API keys) with AES-256-GCM under a key from a Worker secret.
 *
 * `PROVIDER_KEY_ENCRYPTION_KEY` holds one or more base64 keys of 32 bytes, comma-separated: the first seals,
 * all of them open. Each sealed value is stored with the digest of the key that sealed it, so rotation is:
 * put the new key first, keep the old one after it, let `resealAll` (run by the cron) re-encrypt, then drop
 * the old key. The additional data binds a ciphertext to its row, so it cannot be moved to another one.
 */
import { fromBase64, toBase64, toHex } from './crypto';
import { ApiError } from './errors';
import { log } from './log';

export interface Sealed {
  ciphertext: string;
  keyId: string;
}

interface RingKey {
  id: string;
  key: CryptoKey;
}

const enc = new TextEncoder();
const dec = new TextDecoder();

export class KeyRing {
  private constructor(private readonly keys: RingKey[]) {}

  /** Parses the secret; throws a message that names the variable, never its value. */
  static async fromSecret(secret: string | undefined): Promise<KeyRing> {
    const parts = (secret ?? '')
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean);
    if (parts.length === 0) throw new KeyRingError('PROVIDER_KEY_ENCRYPTION_KEY is not set');
    const keys: RingKey[] = [];
    for (const [i, p] of parts.entries()) {
      let raw: Uint8Array<ArrayBuffer>;
      try {
        raw = fromBase64(p);
      } catch {
        throw new KeyRingError(`PROVIDER_KEY_ENCRYPTION_KEY entry ${i + 1} is not base64`);
      }
      if (raw.byteLength !== 32) throw new KeyRingError(`PROVIDER_KEY_ENCRYPTION_KEY entry ${i + 1} must decode to 32 bytes`);
      const id = toHex(new Uint8Array(await crypto.subtle.digest('SHA-256', raw))).slice(0, 16);
      const key = await crypto.subtle.importKey('raw', raw, 'AES-GCM', false, ['encrypt', 'decrypt']);
      keys.push({ id, key });
    }
    return new KeyRing(keys);
  }

  /** Digest of the key that seals new values. */
  get currentKeyId(): string {
    return this.current().id;
  }

  private current(): RingKey {
    const k = this.keys[0];
    if (!k) throw new KeyRingError('no encryption key');
    return k;
  }

  async seal(plaintext: string, boundTo: string): Promise<Sealed> {
    const k = this.current();
    const iv = crypto.getRandomValues(new Uint8Array(12));
    const ct = new Uint8Array(
      await crypto.subtle.encrypt({ name: 'AES-GCM', iv, additionalData: enc.encode(boundTo) }, k.key, enc.encode(plaintext)),
    );
    const out = new Uint8Array(iv.byteLength + ct.byteLength);
    out.set(iv, 0);
    out.set(ct, iv.byteLength);
    return { ciphertext: toBase64(out), keyId: k.id };
  }

  async open(sealed: Sealed, boundTo: string): Promise<string> {
    const k = this.keys.find((x) => x.id === sealed.keyId);
    if (!k) throw new KeyRingError(`the key that sealed this value (${sealed.keyId}) is not in PROVIDER_KEY_ENCRYPTION_KEY`);
    const bytes = fromBase64(sealed.ciphertext);
    try {
      const pt = await crypto.subtle.decrypt(
        { name: 'AES-GCM', iv: bytes.slice(0, 12), additionalData: enc.encode(boundTo) },
        k.key,
        bytes.slice(12),
      );
      return dec.decode(pt);
    } catch {
      throw new KeyRingError('a sealed value failed authentication (tampered, or bound to another row)');
    }
  }
}

/** The deployment's key ring is missing or wrong. Logged in full; the client sees a generic 500. */
export class KeyRingError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'KeyRingError';
  }
}

/** The binding (AES-GCM additional data) of a provider's sealed API key: its row. */
export const sealBinding = (providerId: string): string => `chat_providers:${providerId}`;

const rings = new Map<string, Promise<KeyRing>>();

/** The key ring for a secret, imported once per isolate. */
export function keyRing(secret: string | undefined): Promise<KeyRing> {
  const k = secret ?? '';
  let ring = rings.get(k);
  if (!ring) {
    ring = KeyRing.fromSecret(k);
    rings.set(k, ring);
    ring.catch(() => rings.delete(k));
  }
  return ring;
}

/** For routes: a key ring, or a 500 that says what is wrong with the deployment without details. */
export async function keyRingOrFail(secret: string | undefined): Promise<KeyRing> {
  try {
    return await keyRing(secret);
  } catch (e) {
    log('error', 'provider key encryption misconfigured', { error: String(e) });
    throw new ApiError(500, 'Provider API key encryption is not configured on this deployment.');
  }
}
