/**
 * The one function every credential revocation goes through, called after the revocation is committed: logout,
 * deleting a key or session, DELETE /users/me/sessions, a password change (the other sessions), and a suspension
 * (everything of the user). Key expiry is not a revocation: nothing happens at that moment, and each shard refuses
 * an expired key by its `expires_at` on the next request.
 *
 * It makes the AuthDirectory shards drop what they cache for those keys, so they stop working at once on every shard
 * (no cache TTL to wait out), then closes the WebSocket streams opened with them (close code 4401): the user's
 * StreamRegistry names the chats where the user has streams open, and each chat's object closes the matching sockets.
 */
import type { SocketRevocation } from '../core/room-api';
import { directory, room } from '../lib/rooms';
import { SHARD_CHARS, streamRegistryName } from '../core/key-shards';

export type Revocation = SocketRevocation;

/** Tells the deployment that credentials were revoked (see above); resolves once no shard will accept them. */
export async function credentialsRevoked(env: Env, _ctx: Pick<ExecutionContext, 'waitUntil'> | undefined, r: Revocation): Promise<void> {
  await forgetKeys(env, r);
  const chats = await env.STREAM_REGISTRY.getByName(streamRegistryName(r.userId)).chats();
  await Promise.all(chats.map((chatId) => room(env, chatId).closeSockets(r)));
}

/** Every shard that may cache the revoked keys forgets them. */
async function forgetKeys(env: Env, r: Revocation): Promise<void> {
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
