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
} as const satisfies Record<string, readonly Role[]>;

export type Permission = keyof typeof POLICY;

/** Whether an actor holds a permission. */
export function can(actor: ChatActor, permission: Permission): boolean {
  const allowed: readonly Role[] = POLICY[permission];
  return actor.roles.some((r) => allowed.includes(r));
}

/** Whether the actor may see and change a chat: only its owner (another user's chat reads as not found). */
export function ownsChat(actor: ChatActor, chat: { owner_id: string }): boolean {
  return actor.userId === chat.owner_id;
}

/**
 * Whether the actor may read a chat: its messages, its stream, and the files its messages use. The one read rule: the
 * chat object's guard (`read`) applies it, and sql/queries/files.sql (GetReadableChatFile) states it for a file's
 * chats (`c.owner_id = :user_id`); sharing extends both here and there.
 */
export function canReadChat(actor: ChatActor, chat: { owner_id: string }): boolean {
  return ownsChat(actor, chat);
}

/** An agent, authenticated by its own token. */
export interface Agent {
  id: string;
  name: string;
  createdBy: string | null;
}
