/**
 * Authorization in the chat's object, by construction: every RPC method is listed here with the rule it needs, and the
 * room applies the rule before the method's body runs (`RoomBase.call`), against the chat row the object holds. A
 * method without a rule does not compile (`RULES` covers the RPC interface), and test/worker/room-guard.test.ts fails
 * on a public method of the class that is not listed, or that lets a stranger through.
 */
import { chatAccess, type ChatActor, type ChatGrants } from '../../functions/core/access';
import type { Chat } from '../../functions/core/chats';
import { fail, NOT_FOUND, VIEWER_FORBIDDEN, type ChatRoomRpc, type RoomFailure } from '../../functions/core/room-api';

/**
 * - `read`: whoever may see the chat (its owner and its viewers, `chatAccess`); anyone else gets 404.
 * - `write`: its owner only; a viewer gets 403, anyone else 404.
 * - `create`: the caller becomes the owner; an existing chat answers only its owner's replay.
 * - `internal`: no actor; the deployment calls it (the cron, credential revocation, agents' pushes, owners' counters,
 *   tests), never on behalf of a request's user.
 */
export type Rule = 'read' | 'write' | 'create' | 'internal';

/** The stream (the object's `fetch`) follows `read`: the Worker authenticates, the object decides. */
export const STREAM_RULE = 'read' satisfies Rule;

export type RpcMethod = Exclude<keyof ChatRoomRpc, 'fetch'>;

export const RULES = {
  get: 'read',
  messages: 'read',
  listQueue: 'read',
  tools: 'read',
  mintTicket: 'read',
  create: 'create',
  postMessage: 'write',
  editMessage: 'write',
  interrupt: 'write',
  deleteQueued: 'write',
  promoteQueued: 'write',
  decideToolCall: 'write',
  updateMeta: 'write',
  deleteChat: 'write',
  repinContext: 'write',
  owned: 'write',
  // Forking reads the chat and makes a new one of the caller's: whoever may read it (owner or viewer) may fork it.
  fork: 'read',
  regenerate: 'write',
  exportChat: 'read',
  importChat: 'create',
  contextDirty: 'internal',
  closeSockets: 'internal',
  refresh: 'internal',
  purge: 'internal',
  stats: 'internal',
  outcome: 'internal',
  idle: 'internal',
  accessChanged: 'internal',
} as const satisfies Record<RpcMethod, Rule>;

/** Methods whose rule needs a chat and an actor. */
export type GuardedMethod = { [K in RpcMethod]: (typeof RULES)[K] extends 'read' | 'write' ? K : never }[RpcMethod];

/** Why `actor` may not do what `rule` needs on `chat`, given its viewer grants (null: allowed). */
export function refusal(rule: 'read' | 'write', actor: ChatActor, chat: Chat, grants: ChatGrants): RoomFailure | null {
  const access = chatAccess(actor, chat, grants);
  if (access === null) return fail(404, NOT_FOUND);
  switch (rule) {
    case 'read':
      return null;
    case 'write':
      return access === 'owner' ? null : fail(403, VIEWER_FORBIDDEN);
  }
}
