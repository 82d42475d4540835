// @ts-check
/**
 * Node's side of the Worker's provider-key encryption (functions/core/keyring.ts), for tools that write
 * provider rows directly (the dev seed). Same format, same algorithm (WebCrypto, `globalThis.crypto.subtle`):
 *   - the secret is one or more comma-separated base64 keys of 32 bytes; the first seals, any of them opens;
 *   - keyId = the first 16 hex characters of SHA-256 of the raw key bytes;
 *   - AES-256-GCM with a random 12-byte IV, additional data = UTF-8 of `chat_providers:<providerId>`
 *     (the Worker's `sealBinding`), so a ciphertext only opens for its own row;
 *   - ciphertext = base64(iv || ciphertext-with-tag).
 * Error messages name the variable, never its value.
 */

const { subtle } = globalThis.crypto;
const enc = new TextEncoder();
const dec = new TextDecoder();

/**
 * @typedef {object} Sealed
 * @property {string} ciphertext  base64 of iv || ciphertext-with-tag
 * @property {string} keyId       first 16 hex chars of SHA-256 of the sealing key
 */

/** @param {string} providerId */
const binding = (providerId) => `chat_providers:${providerId}`;

/**
 * Decodes strict base64 (the Worker uses atob, which rejects anything else).
 * @param {string} b64
 * @returns {Uint8Array<ArrayBuffer> | null}
 */
function decodeBase64(b64) {
  try {
    const s = atob(b64);
    const out = new Uint8Array(s.length);
    for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
    return out;
  } catch {
    return null;
  }
}

/**
 * The keys of the secret, in order, imported for AES-GCM, with their ids.
 * @param {string | string[]} secretB64List  the secret as is (comma-separated), or its entries
 * @returns {Promise<{ id: string, key: import('node:crypto').webcrypto.CryptoKey }[]>}
 */
async function importKeys(secretB64List) {
  const parts = (Array.isArray(secretB64List) ? secretB64List : secretB64List.split(','))
    .map((s) => s.trim())
    .filter(Boolean);
  if (parts.length === 0) throw new Error('PROVIDER_KEY_ENCRYPTION_KEY is not set');
  /** @type {{ id: string, key: import('node:crypto').webcrypto.CryptoKey }[]} */
  const keys = [];
  for (const [i, p] of parts.entries()) {
    const raw = decodeBase64(p);
    if (!raw) throw new Error(`PROVIDER_KEY_ENCRYPTION_KEY entry ${i + 1} is not base64`);
    if (raw.byteLength !== 32) throw new Error(`PROVIDER_KEY_ENCRYPTION_KEY entry ${i + 1} must decode to 32 bytes`);
    const id = Buffer.from(await subtle.digest('SHA-256', raw)).toString('hex').slice(0, 16);
    const key = await subtle.importKey('raw', raw, 'AES-GCM', false, ['encrypt', 'decrypt']);
    keys.push({ id, key });
  }
  return keys;
}

/**
 * Seals a provider's API key as the Worker would (KeyRing.seal with sealBinding(providerId)).
 * @param {string | string[]} secretB64List  PROVIDER_KEY_ENCRYPTION_KEY (comma-separated) or its entries
 * @param {string} providerId                the chat_providers.id the value is bound to
 * @param {string} plaintext
 * @returns {Promise<Sealed>}
 */
export async function sealProviderKey(secretB64List, providerId, plaintext) {
  const [k] = await importKeys(secretB64List);
  if (!k) throw new Error('PROVIDER_KEY_ENCRYPTION_KEY is not set');
  const iv = globalThis.crypto.getRandomValues(new Uint8Array(12));
  const ct = new Uint8Array(
    await subtle.encrypt({ name: 'AES-GCM', iv, additionalData: enc.encode(binding(providerId)) }, k.key, enc.encode(plaintext)),
  );
  const out = new Uint8Array(iv.byteLength + ct.byteLength);
  out.set(iv, 0);
  out.set(ct, iv.byteLength);
  return { ciphertext: Buffer.from(out).toString('base64'), keyId: k.id };
}

/**
 * Opens a value sealed by sealProviderKey or by the Worker; throws when the key is not in the secret, or the
 * value was tampered with or bound to another provider id.
 * @param {string | string[]} secretB64List
 * @param {string} providerId
 * @param {Sealed} sealed
 * @returns {Promise<string>}
 */
export async function openProviderKey(secretB64List, providerId, { ciphertext, keyId }) {
  const k = (await importKeys(secretB64List)).find((x) => x.id === keyId);
  if (!k) throw new Error(`the key that sealed this value (${keyId}) is not in PROVIDER_KEY_ENCRYPTION_KEY`);
  const bytes = decodeBase64(ciphertext);
  if (!bytes || bytes.byteLength < 12 + 16) throw new Error('a sealed value is not base64 of iv || ciphertext');
  try {
    const pt = await subtle.decrypt(
      { name: 'AES-GCM', iv: bytes.slice(0, 12), additionalData: enc.encode(binding(providerId)) },
      k.key,
      bytes.slice(12),
    );
    return dec.decode(pt);
  } catch {
    throw new Error('a sealed value failed authentication (tampered, or bound to another row)');
  }
}
