/** Owners managing users: the list, roles, and suspension (which revokes every credential of the user at once). */
import { z } from 'zod';
import { Role } from '../core/roles';
import type { Db, Queryable } from '../core/db';
import { conflict, notFound } from '../core/errors';
import {
  countActiveOwnersExcept,
  deleteAllApiKeysOfUser,
  listUsers as listUserRows,
  lockOwners,
  updateUserAdmin,
} from '../../sql/generated/users.queries';
import { noEvent, type Recorder } from './audit';
import { credentialsRevoked, forgetUserEverywhere } from './revocation';
import type { User } from './users';

/** A user as owners see them. */
export interface AdminUser extends User {
  suspended: boolean;
}

const AdminRow = z.object({
  id: z.string(),
  email: z.string(),
  username: z.string(),
  roles: z.array(Role),
  created_at: z.coerce.date(),
  suspended_at: z.coerce.date().nullable(),
});

function toAdminUser(row: unknown): AdminUser {
  const r = AdminRow.parse(row);
  return { id: r.id, email: r.email, username: r.username, roles: r.roles, created_at: r.created_at.toISOString(), suspended: r.suspended_at !== null };
}

export async function listUsers(db: Queryable, limit: number, offset: number): Promise<AdminUser[]> {
  return (await listUserRows.run({ limit, offset }, db)).map(toAdminUser);
}

export interface UserPatch {
  roles?: Role[] | undefined;
  suspended?: boolean | undefined;
}

/**
 * Changes a user's roles and suspension; the deployment keeps at least one active owner (409 otherwise).
 * Suspending deletes every session and API key of the user in the same transaction and tells every key shard, so
 * the user's tokens stop working at once everywhere; a role change makes the shards re-read the user.
 */
export async function patchUser(
  env: Env,
  ctx: Pick<ExecutionContext, 'waitUntil'> | undefined,
  db: Db,
  id: string,
  patch: UserPatch,
  record: Recorder<AdminUser> = noEvent,
): Promise<AdminUser> {
  const user = await db.inTx(async (tx) => {
    await lockOwners.run(undefined, tx);
    const [row] = await updateUserAdmin.run(
      { id, roles: patch.roles ? [...new Set(patch.roles)] : null, suspended: patch.suspended ?? null },
      tx,
    );
    if (!row) throw notFound();
    const updated = toAdminUser(row);
    if (!updated.roles.includes('owner') || updated.suspended) {
      const [others] = await countActiveOwnersExcept.run({ id }, tx);
      if ((others?.count ?? 0) === 0) throw conflict('The deployment must keep at least one active owner.');
    }
    if (patch.suspended === true) await deleteAllApiKeysOfUser.run({ user_id: id }, tx);
    await record(tx, updated);
    return updated;
  });
  if (patch.suspended === true) await credentialsRevoked(env, ctx, { userId: id, keyIds: 'all' });
  else if (patch.roles) await forgetUserEverywhere(env, id);
  return user;
}
