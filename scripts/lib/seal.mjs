// @ts-check
/**
 * Node's side of the Worker's provider-key encryption, for tools that write provider rows directly (the dev seed, the
 * tests' global setup): the Worker's own KeyRing (functions/core/keyring.ts), loaded through esbuild, so both sides
 * seal and open with one implementation.
 */
import { importTs } from './import-ts.mjs';

/**
 * @typedef {object} Sealed
 * @property {string} ciphertext  base64 of iv || ciphertext-with-tag
 * @property {string} keyId       first 16 hex chars of SHA-256 of the sealing key
 */

/**
 * @typedef {object} Ring
 * @property {(plaintext: string, boundTo: string) => Promise<Sealed>} seal
 * @property {(sealed: Sealed, boundTo: string) => Promise<string>} open
 */

/** @type {Promise<{ fromSecret: (secret: string) => Promise<Ring>, sealBinding: (providerId: string) => string }> | null} */
let loaded = null;

function keyring() {
  loaded ??= importTs('functions/core/keyring.ts').then((m) => {
    const KeyRing = /** @type {{ fromSecret: (secret: string) => Promise<Ring> }} */ (m.KeyRing);
    return { fromSecret: (secret) => KeyRing.fromSecret(secret), sealBinding: /** @type {(id: string) => string} */ (m.sealBinding) };
  });
  return loaded;
}

/** @param {string | string[]} secret  PROVIDER_KEY_ENCRYPTION_KEY (comma-separated) or its entries */
const secretOf = (secret) => (Array.isArray(secret) ? secret.join(',') : secret);

/**
 * Seals a provider's API key as the Worker does (KeyRing.seal with sealBinding(providerId)).
 * @param {string | string[]} secret
 * @param {string} providerId  the chat_providers.id the value is bound to
 * @param {string} plaintext
 * @returns {Promise<Sealed>}
 */
export async function sealProviderKey(secret, providerId, plaintext) {
  const k = await keyring();
  return await (await k.fromSecret(secretOf(secret))).seal(plaintext, k.sealBinding(providerId));
}

/**
 * Opens a value sealed by sealProviderKey or by the Worker; throws when the key is not in the secret, or the value was
 * tampered with or bound to another provider id.
 * @param {string | string[]} secret
 * @param {string} providerId
 * @param {Sealed} sealed
 * @returns {Promise<string>}
 */
export async function openProviderKey(secret, providerId, sealed) {
  const k = await keyring();
  return await (await k.fromSecret(secretOf(secret))).open(sealed, k.sealBinding(providerId));
}

/**
 * Seals a value bound to any row name (e.g. 'oidc_config:client_secret', as functions/services/oidc-config.ts does).
 * @param {string | string[]} secret
 * @param {string} boundTo
 * @param {string} plaintext
 * @returns {Promise<Sealed>}
 */
export async function sealBound(secret, boundTo, plaintext) {
  const k = await keyring();
  return await (await k.fromSecret(secretOf(secret))).seal(plaintext, boundTo);
}
