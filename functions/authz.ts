/**
 * The one place that decides who may do what. Routes declare the permission they need with
 * `authorize(permission)` as route middleware (it runs before body validation, so an anonymous caller
 * gets 401 rather than a validation error); object ownership goes through `assertOwner`, which reports
 * another user's object as not found.
 */
import { getCookie } from 'hono/cookie';
import { createMiddleware } from 'hono/factory';
import type { Context } from 'hono';
import type { AppEnv } from './env';
import type { Queryable } from './core/db';
import { can, ownsChat, type Agent, type ChatActor, type Permission } from './core/access';
import { ApiError, DbUnavailableError, forbidden, notFound, unauthorized } from './core/errors';
import { clientOf, countOrRefuse, refuseIfBlocked } from './lib/rate-limit';
import { sha256Hex, timingSafeEqual } from './core/crypto';
import { directory, room } from './lib/rooms';
import { parseToken } from './lib/tokens';
import { getWorkspaceAgentByTokenId } from '../sql/generated/agents.queries';
import type { Chat } from './core/chats';
import type { KeyIdentity } from './core/key-shards';

export { Role } from './core/roles';

/** Who a request acts as: the user and the session or API key (`keyId`) it used. */
export type Actor = KeyIdentity;

export { can, type Permission } from './core/access';

/** The token a request presents: the Bearer header first, then the `session_token` cookie. */
export function presentedToken(c: Context): string | undefined {
  const header = c.req.header('authorization');
  if (header !== undefined) {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
    return m?.[1] ?? '';
  }
  return getCookie(c, 'session_token');
}

/**
 * Resolves the actor a token belongs to, or throws 401. The lookup goes to the key's AuthDirectory shard,
 * which answers from memory or its own warm connection: no request opens a Postgres connection to authenticate.
 */
export async function authenticateToken(token: string | undefined, env: Env): Promise<Actor> {
  if (token === undefined) throw unauthorized('No session token or API key was given.');
  const parsed = parseToken(token);
  if (!parsed) throw unauthorized('The session token is malformed.');
  const d = directory(env, parsed.id);
  if (!d.db) throw new DbUnavailableError('DATABASE_URL is not set');
  const hashed = await sha256Hex(parsed.secret);
  // The shard knows the deployment's database; a Worker serving another one (tests) tells it once, when it asks.
  let answer = await d.shard.authenticate(parsed.id, hashed);
  if (!answer.ok && answer.reason === 'need_url') answer = await d.shard.authenticate(parsed.id, hashed, d.db);
  if (!answer.ok) {
    if (answer.reason === 'unavailable') throw new DbUnavailableError('the key directory cannot reach the database');
    const detail =
      answer.reason === 'expired'
        ? 'The session token has expired.'
        : answer.reason === 'suspended'
          ? 'The account is suspended.'
          : 'The session token is invalid or has been revoked.';
    throw unauthorized(detail);
  }
  return answer.identity;
}

/** Environment of a route behind `authorize`: the actor is known. */
export type AuthedEnv = { Bindings: AppEnv['Bindings']; Variables: AppEnv['Variables'] & { actor: Actor } };

/**
 * Authentication with per-IP limits on failure: an address this isolate knows to be over the limit is refused
 * before any lookup, and every 401 of a presented credential is counted (past the limit it becomes a 429 with
 * Retry-After). A request that presents none is answered 401 without counting: it costs no lookup, and a logged-out
 * page load (the web UI's first `GET /users/me`) must not count against everyone behind the same address.
 */
async function authenticateCounted<T>(req: Request, env: Env, presented: boolean, authenticate: () => Promise<T>): Promise<T> {
  const client = clientOf(req);
  refuseIfBlocked(client);
  try {
    return await authenticate();
  } catch (e) {
    if (presented && e instanceof ApiError && e.status === 401) await countOrRefuse(env, client, 'auth_failure');
    throw e;
  }
}

/** The actor of a request's token (401 without a valid one), when it holds `permission` (403 without it). */
async function authorized(req: Request, env: Env, token: string | undefined, permission: Permission): Promise<Actor> {
  const actor = await authenticateCounted(req, env, token !== undefined, () => authenticateToken(token, env));
  if (!can(actor, permission)) throw forbidden();
  return actor;
}

/** Route middleware: authenticates, then requires `permission` (403 without it). */
export function authorize(permission: Permission) {
  return createMiddleware<AuthedEnv>(async (c, next) => {
    c.set('actor', await authorized(c.req.raw, c.env, presentedToken(c), permission));
    await next();
  });
}

/**
 * Route middleware of the stream. A request with `?ticket=` goes on unauthenticated: the chat's object minted the
 * ticket and decides (401 for an unknown, expired or used one, counted as a failed authentication like a bad token).
 * Any other request needs a user token, as `authorize('self')`.
 */
export function authorizeStream() {
  return createMiddleware<AppEnv>(async (c, next) => {
    if (c.req.query('ticket') === undefined) {
      c.set('actor', await authorized(c.req.raw, c.env, presentedToken(c), 'self'));
      await next();
      return;
    }
    const client = clientOf(c.req.raw);
    refuseIfBlocked(client);
    await next();
    if (c.res.status === 401) await countOrRefuse(c.env, client, 'auth_failure');
  });
}

export type { Agent } from './core/access';

/** Environment of a route behind `authorizeAgent`: the agent is known. */
export type AgentEnv = { Bindings: AppEnv['Bindings']; Variables: AppEnv['Variables'] & { agent: Agent } };

/**
 * Resolves the agent a Bearer token belongs to, or throws 401. Agent tokens have the users' shape
 * (`<id>-<secret>`) but live in `workspace_agents`, so each kind only works where it is looked up: user routes ask
 * `api_keys` (through the AuthDirectory) and refuse agent tokens, agent routes ask `workspace_agents` and refuse
 * user tokens. Agent calls are rare (a push when the agent's context changes), so this asks Postgres directly.
 */
export async function authenticateAgent(header: string | undefined, db: Queryable): Promise<Agent> {
  if (header === undefined) throw unauthorized('No agent token was given.');
  const token = /^Bearer\s+(\S+)\s*$/i.exec(header)?.[1] ?? '';
  const parsed = parseToken(token);
  if (!parsed) throw unauthorized('The agent token is malformed.');
  const [row] = await getWorkspaceAgentByTokenId.run({ token_id: parsed.id }, db);
  if (!row || !timingSafeEqual(await sha256Hex(parsed.secret), row.hashed_secret)) {
    throw unauthorized('The agent token is invalid.');
  }
  return { id: row.id, name: row.name, createdBy: row.created_by };
}

/** Route middleware for agent routes: authenticates the agent (Bearer only; user tokens get 401). */
export function authorizeAgent() {
  return createMiddleware<AgentEnv>(async (c, next) => {
    const header = c.req.header('authorization');
    c.set('agent', await authenticateCounted(c.req.raw, c.env, header !== undefined, () => authenticateAgent(header, c.var.db)));
    await next();
  });
}

/** Objects that belong to someone else are reported as not found, never as forbidden. */
export function assertOwner(actor: Actor, ownerId: string): void {
  if (!ownsChat(actor, { owner_id: ownerId })) throw notFound();
}

/**
 * A chat the actor owns, or 404 (whether it does not exist or is someone else's). The chat's object holds the row
 * and makes the check itself (with `ownsChat`), as it does on every chat call.
 */
export async function ownedChat(env: Env, actor: Actor, chatId: string): Promise<Chat> {
  const r = await room(env, chatId).get(chatActor(actor));
  if (!r.ok) throw new ApiError(r.status, r.message, r.detail);
  return r.value;
}

/**
 * A chat the actor owns, for owner-only routes the Worker serves itself (ACL, share links): 403 for a viewer, 404 for
 * anyone else. The chat's object decides, as on every chat call.
 */
export async function ownChat(env: Env, actor: Actor, chatId: string): Promise<Chat> {
  const r = await room(env, chatId).owned(chatActor(actor));
  if (!r.ok) throw new ApiError(r.status, r.message, r.detail);
  return r.value;
}

/** What a chat's object needs to know of the actor (plain data for RPC). */
export function chatActor(actor: Actor): ChatActor {
  return { userId: actor.userId, roles: actor.roles, groupIds: actor.groupIds };
}
