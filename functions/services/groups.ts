/**
 * Groups and their members. Every membership write goes through this service (the routes now; the single sign-on
 * sync later), because each one must end with `membershipChanged`: the user's cached keys forget their groups, and
 * the chats where the user has streams open re-check them (a socket that lost access closes with 4403).
 */
import { z } from 'zod';
import type { Db, Queryable, Tx } from '../core/db';
import { pgErrorCode } from '../core/db';
import { conflict, notFound } from '../core/errors';
import { streamRegistryName } from '../core/key-shards';
import type { Group, GroupMember } from '../core/shapes/sharing';
import { room } from '../lib/rooms';
import { forgetUserEverywhere } from './revocation';
import {
  addGroupMember,
  deleteGroup as deleteGroupRow,
  getGroup as getGroupRow,
  getUserGroupIds,
  insertGroup,
  listGroupMembers,
  listGroups as listGroupRows,
  removeGroupMember,
  renameGroup,
} from '../../sql/generated/groups.queries';

const GroupRow = z.object({ id: z.string(), name: z.string(), member_count: z.number().int(), created_at: z.coerce.date() });
const toGroup = (row: unknown): Group => {
  const g = GroupRow.parse(row);
  return { ...g, created_at: g.created_at.toISOString() };
};
const NAME_TAKEN = 'A group with this name already exists.';
const Ids = z.array(z.string());

export async function listGroups(db: Queryable): Promise<Group[]> {
  return (await listGroupRows.run(undefined, db)).map(toGroup);
}

export async function getGroup(db: Queryable, id: string): Promise<Group> {
  const [row] = await getGroupRow.run({ id }, db);
  if (!row) throw notFound();
  return toGroup(row);
}

export async function createGroup(db: Queryable, name: string): Promise<Group> {
  const [row] = await insertGroup.run({ name }, db);
  if (!row) throw conflict(NAME_TAKEN);
  return toGroup(row);
}

export async function renameGroupTo(db: Queryable, id: string, name: string): Promise<Group> {
  try {
    const [row] = await renameGroup.run({ id, name }, db);
    if (!row) throw notFound();
    return toGroup(row);
  } catch (e) {
    if (pgErrorCode(e) === '23505') throw conflict(NAME_TAKEN);
    throw e;
  }
}

/** Deletes a group: its members lose what it gave them at once, and the chats shared with it forget the grant. */
export async function deleteGroup(env: Env, db: Db, id: string, record?: Record): Promise<void> {
  const row = await db.inTx(async (tx) => {
    const [r] = await deleteGroupRow.run({ id }, tx);
    if (!r) throw notFound();
    if (record) await record(tx);
    return r;
  });
  const users = Ids.parse(row.user_ids);
  const chats = Ids.parse(row.chat_ids);
  await Promise.all([...users.map((u) => membershipChanged(env, db, u)), ...chats.map((c) => room(env, c).accessChanged(null))]);
}

export async function members(db: Queryable, groupId: string): Promise<GroupMember[]> {
  await getGroup(db, groupId);
  return (await listGroupMembers.run({ group_id: groupId }, db)).map((r) => MemberRow.parse(r));
}
const MemberRow = z.object({ user_id: z.string(), username: z.string(), email: z.string() });

/** Adds a user to a group (idempotent); 404 for an unknown group or user. */
/** Writes the change's audit event in its transaction (services/audit.ts). */
type Record = (tx: Tx) => Promise<void>;

export async function addMember(env: Env, db: Db, groupId: string, userId: string, record?: Record): Promise<void> {
  const r = await db.inTx(async (tx) => {
    const [x] = await addGroupMember.run({ group_id: groupId, user_id: userId }, tx);
    if (!x?.group_exists || !x.user_exists) throw notFound();
    if (x.added > 0 && record) await record(tx);
    return x;
  });
  if (r.added > 0) await membershipChanged(env, db, userId);
}

/** Removes a user from a group (idempotent for a member already gone); 404 for an unknown group. */
export async function removeMember(env: Env, db: Db, groupId: string, userId: string, record?: Record): Promise<void> {
  const r = await db.inTx(async (tx) => {
    const [x] = await removeGroupMember.run({ group_id: groupId, user_id: userId }, tx);
    if (!x?.group_exists) throw notFound();
    if (x.removed > 0 && record) await record(tx);
    return x;
  });
  if (r.removed > 0) await membershipChanged(env, db, userId);
}

/**
 * After a committed change of a user's groups: every key shard forgets the user (their next request reads the new
 * groups), and each chat where they have a stream open (their StreamRegistry, as for credential revocation) is told
 * their new groups, closing with 4403 the sockets that lost access.
 */
export async function membershipChanged(env: Env, db: Queryable, userId: string): Promise<void> {
  const [row] = await getUserGroupIds.run({ user_id: userId }, db);
  const groupIds = Ids.parse(row?.group_ids ?? []);
  await forgetUserEverywhere(env, userId);
  const chats = await env.STREAM_REGISTRY.getByName(streamRegistryName(userId)).chats();
  await Promise.all(chats.map((chatId) => room(env, chatId).accessChanged({ userId, groupIds })));
}
