/**
 * Chats shared with viewers (the ACL), the list of chats shared with a user, and read-only share links. Who may do
 * what is decided by the chat's object (`owned`: the owner, 403 for a viewer, 404 for anyone else) before any of
 * these run; after a committed ACL change the object re-reads its grants (`accessChanged`), closing with 4403 the
 * sockets of users who lost access.
 */
import { noEvent, type Recorder } from './audit';
import { z } from 'zod';
import type { Db, Queryable } from '../core/db';
import { badRequest, notFound, type Validation } from '../core/errors';
import { randomString, sha256Hex } from '../core/crypto';
import { toChat, toMessage, type Chat, type Message } from '../core/chats';
import type { ChatAcl, ChatAclPatch, NewShareLink, ShareLink, SharedChat } from '../core/shapes/sharing';
import { room } from '../lib/rooms';
import type { ChatFile } from '../core/shapes/files';
import { toFile } from './files';
import {
  deleteShareLink,
  getChatAclGroups,
  getChatAclUsers,
  getChatsSharedWith,
  getKnownGroupIds,
  getKnownUserIds,
  getSharedChat,
  getSharedFile,
  getSharedMessages,
  grantChatToGroups,
  grantChatToUsers,
  insertShareLink,
  listShareLinks,
  revokeChatGrants,
} from '../../sql/generated/sharing.queries';

/** The most messages a link's snapshot shows (the oldest first). */
export const MAX_SHARED_MESSAGES = 10_000;
/** A link's longest life when one is given (a link without `expires_in_seconds` lasts until it is revoked). */
export const MAX_LINK_SECONDS = 365 * 24 * 3600;

export async function chatAcl(db: Queryable, chatId: string): Promise<ChatAcl> {
  const [users, groups] = await Promise.all([getChatAclUsers.run({ chat_id: chatId }, db), getChatAclGroups.run({ chat_id: chatId }, db)]);
  return {
    users: users.map((u) => ({ user_id: u.user_id, username: u.username, role: 'viewer' as const })),
    groups: groups.map((g) => ({ group_id: g.group_id, name: g.name, role: 'viewer' as const })),
  };
}

/**
 * Applies an ACL change in one transaction; unknown users or groups (and the chat's owner) are 400 with a validation
 * per id, and nothing changes. Then the chat's object re-reads its grants.
 */
export async function patchChatAcl(env: Env, db: Db, chat: Chat, patch: ChatAclPatch, record: Recorder<ChatAclPatch> = noEvent): Promise<ChatAcl> {
  const users = Object.entries(patch.users ?? {});
  const groups = Object.entries(patch.groups ?? {});
  await db.inTx(async (tx) => {
    const userIds = users.map(([id]) => id);
    const groupIds = groups.map(([id]) => id);
    const [knownUsers, knownGroups] = [
      new Set((await getKnownUserIds.run({ ids: userIds }, tx)).map((r) => r.id)),
      new Set((await getKnownGroupIds.run({ ids: groupIds }, tx)).map((r) => r.id)),
    ];
    const problems: Validation[] = [
      ...userIds.filter((id) => !knownUsers.has(id)).map((id) => ({ field: `users.${id}`, detail: 'no user has this id' })),
      ...userIds.filter((id) => id === chat.owner_id).map((id) => ({ field: `users.${id}`, detail: "is the chat's owner" })),
      ...groupIds.filter((id) => !knownGroups.has(id)).map((id) => ({ field: `groups.${id}`, detail: 'no group has this id' })),
    ];
    if (problems.length > 0) throw badRequest('Unknown users or groups.', problems);
    const revoked = (list: [string, 'viewer' | null][]) => list.filter(([, r]) => r === null).map(([id]) => id);
    const granted = (list: [string, 'viewer' | null][]) => list.filter(([, r]) => r !== null).map(([id]) => id);
    await revokeChatGrants.run({ chat_id: chat.id, user_ids: revoked(users), group_ids: revoked(groups) }, tx);
    if (granted(users).length > 0) await grantChatToUsers.run({ chat_id: chat.id, user_ids: granted(users) }, tx);
    if (granted(groups).length > 0) await grantChatToGroups.run({ chat_id: chat.id, group_ids: granted(groups) }, tx);
    await record(tx, patch);
  });
  await room(env, chat.id).accessChanged(null);
  return await chatAcl(db, chat.id);
}

/** The chats shared with a user (directly or through a group), most recently active first. */
export async function chatsSharedWith(db: Queryable, userId: string, archived: boolean, limit: number, offset: number): Promise<Chat[]> {
  return (await getChatsSharedWith.run({ user_id: userId, archived, limit, offset }, db)).map(toChat);
}

const LinkRow = z.object({ id: z.string(), expires_at: z.coerce.date().nullable(), created_at: z.coerce.date() });
const toLink = (row: unknown): ShareLink => {
  const l = LinkRow.parse(row);
  return { id: l.id, expires_at: l.expires_at?.toISOString() ?? null, created_at: l.created_at.toISOString() };
};

/** A new link: 256 random bits, of which only the SHA-256 is stored; the token is in the answer only. */
export async function createShareLink(db: Queryable, chatId: string, expiresInSeconds: number | null, origin: string): Promise<NewShareLink> {
  const token = randomString(43);
  const expires_at = expiresInSeconds === null ? null : new Date(Date.now() + expiresInSeconds * 1000);
  const [row] = await insertShareLink.run({ chat_id: chatId, hashed_token: await sha256Hex(token), expires_at }, db);
  if (!row) throw notFound();
  return { ...toLink(row), url: `${origin}/s/${token}`, token };
}

export async function shareLinks(db: Queryable, chatId: string): Promise<ShareLink[]> {
  return (await listShareLinks.run({ chat_id: chatId }, db)).map(toLink);
}

export async function revokeShareLink(db: Queryable, chatId: string, linkId: string): Promise<void> {
  const rows = await deleteShareLink.run({ id: linkId, chat_id: chatId }, db);
  if (rows.length === 0) throw notFound();
}

const SharedRow = z.object({
  chat_id: z.string(),
  last_message_id: z.union([z.string(), z.number()]).transform(Number),
  expires_at: z.coerce.date().nullable(),
  title: z.string(),
  created_at: z.coerce.date(),
  owner_username: z.string(),
});

/** The snapshot behind a token, and when it stops being served (null: until revoked); null for no live link. */
export async function sharedSnapshot(db: Queryable, token: string): Promise<{ body: SharedChat; expiresAt: Date | null } | null> {
  const [raw] = await getSharedChat.run({ hashed_token: await sha256Hex(token) }, db);
  if (!raw) return null;
  const link = SharedRow.parse(raw);
  const rows = await getSharedMessages.run({ chat_id: link.chat_id, last_message_id: String(link.last_message_id), limit: MAX_SHARED_MESSAGES }, db);
  const messages: Message[] = rows.map(toMessage);
  return {
    body: { chat: { title: link.title, created_at: link.created_at.toISOString(), owner_username: link.owner_username }, messages },
    expiresAt: link.expires_at,
  };
}

/** A file of a live link's snapshot (used by a live message no newer than the link's end), with its R2 key and the link's expiry; null otherwise. */
export async function sharedFile(
  db: Queryable,
  token: string,
  fileId: string,
): Promise<{ file: ChatFile & { key: string }; expiresAt: Date | null } | null> {
  const [row] = await getSharedFile.run({ hashed_token: await sha256Hex(token), file_id: fileId }, db);
  return row ? { file: { ...toFile(row), key: row.r2_key }, expiresAt: row.expires_at } : null;
}
