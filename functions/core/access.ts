/**
 * The access rules, as pure functions: who holds which permission, and who may see a chat. Both the Worker's route
 * middleware (`functions/authz.ts`) and the chat's Durable Object (which holds the chat row and checks it on every
 * call) decide with these, so the rules live in one place and the check sits where the data is.
 */
import type { Role } from './roles';

/** Who a call acts as, as far as access to objects goes. */
export interface ChatActor {
  userId: string;
  roles: readonly Role[];
  /** The groups the user belongs to (cached with their key by the AuthDirectory); absent: none. */
  groupIds?: readonly string[] | undefined;
}

/** Every permission a route can ask for, and the roles that hold it. */
export const POLICY = {
  /** Anything a signed-in user may do to their own account and their own objects. */
  'self': ['owner', 'member'],
  'users.create': ['owner'],
  /** List users, change their roles, suspend them. */
  'users.manage': ['owner'],
  'deployment.manage': ['owner'],
  /** Everyone's usage and spend (GET /usage); a user sees their own with `self`. */
  'usage.read_all': ['owner'],
  /** One user's own spend limit. */
  'spend_limits.manage': ['owner'],
  /** Agents are deployment-wide: only owners create, rotate and delete them. */
  'agents.manage': ['owner'],
  /** Groups and their members (chats are shared with groups). */
  'groups.manage': ['owner'],
} as const satisfies Record<string, readonly Role[]>;

export type Permission = keyof typeof POLICY;

/** Whether an actor holds a permission. */
export function can(actor: ChatActor, permission: Permission): boolean {
  const allowed: readonly Role[] = POLICY[permission];
  return actor.roles.some((r) => allowed.includes(r));
}

/** Whether the actor owns a chat (its owner alone may change it). */
export function ownsChat(actor: ChatActor, chat: { owner_id: string }): boolean {
  return actor.userId === chat.owner_id;
}

/** A chat's viewer grants: users granted directly, and groups whose members are granted. */
export interface ChatGrants {
  userIds: readonly string[];
  groupIds: readonly string[];
}

export const NO_GRANTS: ChatGrants = { userIds: [], groupIds: [] };

/** What the actor may do with a chat: everything (its owner), read it (a viewer), or nothing. */
export type ChatAccess = 'owner' | 'viewer';

/**
 * THE rule of who may read a chat, for code that holds the chat row and its grants (the chat's object; files and
 * search on the Worker side): its owner, a user granted directly, or a member of a granted group. Null: the chat does
 * not exist for this actor (404). SQL that lists or reads chats for a user uses the same rule as the view
 * `chat_readers` (migration 000015; `GetChatAccess` in sql/queries/sharing.sql).
 */
export function chatAccess(actor: ChatActor, chat: { owner_id: string }, grants: ChatGrants): ChatAccess | null {
  if (ownsChat(actor, chat)) return 'owner';
  if (grants.userIds.includes(actor.userId)) return 'viewer';
  const mine = actor.groupIds ?? [];
  if (mine.length > 0 && grants.groupIds.some((g) => mine.includes(g))) return 'viewer';
  return null;
}

/** An agent, authenticated by its own token. */
export interface Agent {
  id: string;
  name: string;
  createdBy: string | null;
}
