/**
 * Node and the Worker agree on sealed provider keys: a key sealed by scripts/lib/seal.mjs (what `npm run dev`
 * seeds) in test/global-setup.ts opens with the Worker's KeyRing, bound to the same row.
 */
import { env } from 'cloudflare:workers';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { KeyRing } from '../../functions/core/keyring';
import { sealBinding } from '../../functions/core/model-resolve';

const SealedFromNode = z.object({
  ciphertext: z.string(),
  keyId: z.string(),
  providerId: z.string(),
  plaintext: z.string(),
});

const Bindings = z.object({ SEALED_FROM_NODE: z.string(), PROVIDER_KEY_ENCRYPTION_KEY: z.string() });

describe('provider keys sealed in Node', () => {
  const bindings = Bindings.parse(env);
  const sealed = SealedFromNode.parse(JSON.parse(bindings.SEALED_FROM_NODE));

  it('open in the Worker with the same key ring and row binding', async () => {
    const ring = await KeyRing.fromSecret(bindings.PROVIDER_KEY_ENCRYPTION_KEY);
    expect(sealed.keyId).toBe(ring.currentKeyId);
    const plain = await ring.open({ ciphertext: sealed.ciphertext, keyId: sealed.keyId }, sealBinding(sealed.providerId));
    expect(plain).toBe(sealed.plaintext);
  });

  it('do not open for another row', async () => {
    const ring = await KeyRing.fromSecret(bindings.PROVIDER_KEY_ENCRYPTION_KEY);
    await expect(
      ring.open({ ciphertext: sealed.ciphertext, keyId: sealed.keyId }, sealBinding('00000000-0000-4000-8000-000000000002')),
    ).rejects.toThrow(/failed authentication/);
  });

  it('and what the Worker seals has the same shape', async () => {
    const ring = await KeyRing.fromSecret(bindings.PROVIDER_KEY_ENCRYPTION_KEY);
    const mine = await ring.seal(sealed.plaintext, sealBinding(sealed.providerId));
    expect(mine.keyId).toBe(sealed.keyId);
    expect(atob(mine.ciphertext).length).toBe(atob(sealed.ciphertext).length);
  });
});
