/**
 * The one function every credential revocation goes through, called after the revocation is committed: logout,
 * deleting a key or session, DELETE /users/me/sessions, a password change (the other sessions), and a suspension
 * (everything of the user). Key expiry is not a revocation: nothing happens at that moment, and each shard refuses
 * an expired key by its `expires_at` on the next request.
 *
 * Today it makes the AuthDirectory shards drop what they cache for those keys, so they stop working at once on
 * every shard (no cache TTL to wait out). Next, it also closes the WebSocket streams opened with them (close code
 * 4401): that belongs here too, so no revocation point can forget it.
 */
import { SHARD_CHARS } from './key-shards';
import { directory } from '../lib/rooms';

export interface Revocation {
  userId: string;
  /** The revoked keys (sessions and API keys), or `'all'` of the user's. */
  keyIds: string[] | 'all';
  /** A key that stays valid (the caller's own session, on "revoke the others"). */
  exceptKeyId?: string;
}

/** Tells the deployment that credentials were revoked (see above); resolves once no shard will accept them. */
export async function credentialsRevoked(env: Env, _ctx: Pick<ExecutionContext, 'waitUntil'> | undefined, r: Revocation): Promise<void> {
  if (r.keyIds === 'all') {
    await forgetUserEverywhere(env, r.userId);
    return;
  }
  const byShard = new Map<string, string[]>();
  for (const id of r.keyIds) {
    if (id === r.exceptKeyId) continue;
    const ch = id.charAt(0);
    byShard.set(ch, [...(byShard.get(ch) ?? []), id]);
  }
  await Promise.all([...byShard.values()].map((ids) => directory(env, ids[0] ?? '').shard.forgetKeys(ids)));
}

/** Every shard forgets what it caches about a user (credentials revoked, or roles changed). */
export async function forgetUserEverywhere(env: Env, userId: string): Promise<void> {
  const chars = Array.from({ length: SHARD_CHARS.length }, (_, i) => SHARD_CHARS.charAt(i));
  await Promise.all(chars.map((ch) => directory(env, ch).shard.forgetUser(userId)));
}
