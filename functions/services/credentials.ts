/** A user's own credentials: their API keys, their sessions, their password. Every revocation reports to revocation.ts. */
import { z } from 'zod';
import type { Actor } from '../authz';
import type { Settings } from '../env';
import type { Db, Queryable } from '../core/db';
import { noEvent, type Recorder } from './audit';
import { hashPassword, verifyPassword } from '../core/crypto';
import { ApiError } from '../core/errors';
import { directory } from '../lib/rooms';
import { deleteOtherSessions, getUserCredentialsById, listApiKeysByUser, updateUserPassword } from '../../sql/generated/users.queries';
import { credentialsRevoked } from './revocation';

type Ctx = Pick<ExecutionContext, 'waitUntil'> | undefined;

/** Revokes one of the actor's API keys or sessions (its shard deletes the row); false when they have no such key. */
export async function revokeOwnKey(env: Env, ctx: Ctx, actor: Actor, keyId: string): Promise<boolean> {
  const d = directory(env, keyId);
  if (!(await d.shard.revoke(d.db, keyId, actor.userId))) return false;
  await credentialsRevoked(env, ctx, { userId: actor.userId, keyIds: [keyId] });
  return true;
}

const KeyRow = z.object({
  id: z.string(),
  name: z.string(),
  created_at: z.coerce.date(),
  expires_at: z.coerce.date(),
  last_used_at: z.coerce.date().nullable(),
});

export interface KeyInfo {
  id: string;
  name: string;
  created_at: string;
  expires_at: string;
  /** Updated at most once an hour per key. */
  last_used_at: string | null;
}

/** The user's API keys (not their sessions), newest first. */
export async function listOwnKeys(db: Queryable, userId: string): Promise<KeyInfo[]> {
  return (await listApiKeysByUser.run({ user_id: userId }, db)).map((raw) => {
    const r = KeyRow.parse(raw);
    return {
      id: r.id,
      name: r.name,
      created_at: r.created_at.toISOString(),
      expires_at: r.expires_at.toISOString(),
      last_used_at: r.last_used_at?.toISOString() ?? null,
    };
  });
}

/** The session to keep when revoking "the others": the actor's own, when it signed in with one. */
const ownSession = (actor: Actor): string | null => (actor.keyKind === 'session' ? actor.keyId : null);

/** Revokes every session of the actor but the one this request uses; answers how many went. */
export async function revokeOtherSessions(env: Env, ctx: Ctx, db: Db, actor: Actor, record: Recorder<number> = noEvent): Promise<number> {
  const gone = await db.inTx(async (tx) => {
    const rows = await deleteOtherSessions.run({ user_id: actor.userId, except_id: ownSession(actor) }, tx);
    await record(tx, rows.length);
    return rows;
  });
  await credentialsRevoked(env, ctx, { userId: actor.userId, keyIds: gone.map((r) => r.id), exceptKeyId: actor.keyId });
  return gone.length;
}

/** Changes the actor's password after checking the current one; their other sessions are revoked (API keys stay). */
export async function changePassword(
  env: Env,
  ctx: Ctx,
  db: Db,
  s: Settings,
  actor: Actor,
  input: { old_password: string; new_password: string },
  record: Recorder<number> = noEvent,
): Promise<void> {
  const [row] = await getUserCredentialsById.run({ id: actor.userId }, db);
  if (!row || !(await verifyPassword(input.old_password, row.hashed_password))) {
    throw new ApiError(400, 'Validation failed.', undefined, [{ field: 'old_password', detail: 'is not your current password' }]);
  }
  const hashed = await hashPassword(input.new_password, s.PASSWORD_HASH_ITERATIONS);
  const gone = await db.inTx(async (tx) => {
    await updateUserPassword.run({ id: actor.userId, hashed_password: hashed }, tx);
    const rows = await deleteOtherSessions.run({ user_id: actor.userId, except_id: ownSession(actor) }, tx);
    await record(tx, rows.length);
    return rows;
  });
  await credentialsRevoked(env, ctx, { userId: actor.userId, keyIds: gone.map((r) => r.id), exceptKeyId: actor.keyId });
}
