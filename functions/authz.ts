/**
 * The one place that decides who may do what. Routes declare the permission they need with
 * `authorize(permission)` as route middleware (it runs before body validation, so an anonymous caller
 * gets 401 rather than a validation error); object ownership goes through `assertOwner`, which reports
 * another user's object as not found.
 */
import { getCookie } from 'hono/cookie';
import { createMiddleware } from 'hono/factory';
import type { Context } from 'hono';
import { z } from 'zod';
import type { AppEnv } from './env';
import type { Queryable } from './lib/db';
import { forbidden, notFound, unauthorized } from './lib/errors';
import { sha256Hex, timingSafeEqual } from './lib/crypto';
import { parseToken } from './lib/tokens';
import { getApiKeyWithUser } from '../sql/generated/users.queries';
import { getChatById } from '../sql/generated/chats.queries';
import { toChat, type Chat } from './services/chats';

export const Role = z.enum(['owner', 'member']);
export type Role = z.infer<typeof Role>;

export interface Actor {
  userId: string;
  email: string;
  username: string;
  roles: Role[];
  createdAt: Date;
  /** The id of the session or API key the request used. */
  keyId: string;
  keyKind: 'session' | 'api_key';
}

/** Every permission a route can ask for, and the roles that hold it. */
const POLICY = {
  /** Anything a signed-in user may do to their own account and their own objects. */
  'self': ['owner', 'member'],
  'users.create': ['owner'],
  'deployment.manage': ['owner'],
} as const satisfies Record<string, readonly Role[]>;

export type Permission = keyof typeof POLICY;

/** Whether an actor holds a permission. */
export function can(actor: Actor, permission: Permission): boolean {
  const allowed: readonly Role[] = POLICY[permission];
  return actor.roles.some((r) => allowed.includes(r));
}

const DbKeyRow = z.object({
  key_id: z.string(),
  key_kind: z.enum(['session', 'api_key']),
  hashed_secret: z.string(),
  expires_at: z.coerce.date(),
  user_id: z.string(),
  email: z.string(),
  username: z.string(),
  roles: z.array(Role),
  created_at: z.coerce.date(),
});

/** The token a request presents: the Bearer header first, then the `session_token` cookie. */
export function presentedToken(c: Context): string | undefined {
  const header = c.req.header('authorization');
  if (header !== undefined) {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
    return m?.[1] ?? '';
  }
  return getCookie(c, 'session_token');
}

/** Resolves the actor a token belongs to, or throws 401. */
export async function authenticateToken(token: string | undefined, db: Queryable): Promise<Actor> {
  if (token === undefined) throw unauthorized('No session token or API key was given.');
  const parsed = parseToken(token);
  if (!parsed) throw unauthorized('The session token is malformed.');
  const [row] = await getApiKeyWithUser.run({ id: parsed.id }, db);
  const key = row ? DbKeyRow.parse(row) : null;
  if (!key || !timingSafeEqual(await sha256Hex(parsed.secret), key.hashed_secret)) {
    throw unauthorized('The session token is invalid or has been revoked.');
  }
  if (key.expires_at.getTime() <= Date.now()) throw unauthorized('The session token has expired.');
  const actor: Actor = {
    userId: key.user_id,
    email: key.email,
    username: key.username,
    roles: key.roles,
    createdAt: key.created_at,
    keyId: key.key_id,
    keyKind: key.key_kind,
  };
  return actor;
}

/** Environment of a route behind `authorize`: the actor is known. */
export type AuthedEnv = { Bindings: AppEnv['Bindings']; Variables: AppEnv['Variables'] & { actor: Actor } };

/** Route middleware: authenticates, then requires `permission` (403 without it). */
export function authorize(permission: Permission) {
  return createMiddleware<AuthedEnv>(async (c, next) => {
    const actor = await authenticateToken(presentedToken(c), c.var.db);
    c.set('actor', actor);
    if (!can(actor, permission)) throw forbidden();
    await next();
  });
}

/** Objects that belong to someone else are reported as not found, never as forbidden. */
export function assertOwner(actor: Actor, ownerId: string): void {
  if (actor.userId !== ownerId) throw notFound();
}

/** A chat the actor owns, or 404 (whether it does not exist or is someone else's). */
export async function ownedChat(db: Queryable, actor: Actor, chatId: string): Promise<Chat> {
  const [row] = await getChatById.run({ id: chatId }, db);
  if (!row) throw notFound();
  const chat = toChat(row);
  assertOwner(actor, chat.owner_id);
  return chat;
}
