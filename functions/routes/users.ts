import { createRoute, z } from '@hono/zod-openapi';
import { deleteCookie, setCookie } from 'hono/cookie';
import type { Context } from 'hono';
import { authorize, Role } from '../authz';
import { settings, type AppEnv } from '../env';
import { clientOf, countOrRefuse } from '../lib/rate-limit';
import { errorResponses, jsonBody, jsonResponse, router } from '../lib/openapi';
import { revokeOwnKey } from '../services/credentials';
import { actorUser, createFirstUser, createUser, firstUserNeeded, login } from '../services/users';
import { audit, audited, requestIp } from '../services/audit';

export const UserSchema = z
  .object({
    id: z.uuid(),
    email: z.string(),
    username: z.string(),
    roles: z.array(Role),
    created_at: z.iso.datetime(),
  })
  .openapi('User');

const Email = z.email({ message: 'must be an email address' }).max(254);
const Username = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/, {
    message: 'must be 1-64 letters, digits, "_", "." or "-", starting with a letter or digit',
  });
export const Password = z.string().min(8, { message: 'must be at least 8 characters' }).max(256);

const Credentials = z.object({ email: Email, username: Username, password: Password }).strict();

/** Session cookie for browsers (the WebSocket stream authenticates with it). */
function setSessionCookie(c: Context<AppEnv>, token: string, maxAge: number): void {
  setCookie(c, 'session_token', token, {
    path: '/',
    httpOnly: true,
    sameSite: 'Lax',
    secure: new URL(c.req.url).protocol === 'https:',
    maxAge,
  });
}

const app = router()
  .openapi(
    createRoute({
      method: 'get',
      path: '/first',
      summary: 'Whether the first user is still to be created (the web UI opens on Setup then)',
      security: [],
      responses: {
        200: jsonResponse(z.object({ needed: z.boolean() }), '`needed`: no user exists yet'),
        ...errorResponses(503),
      },
    }),
    async (c) => c.json({ needed: await firstUserNeeded(c.var.db) }, 200),
  )
  .openapi(
    createRoute({
      method: 'post',
      path: '/first',
      summary: 'Create the first user (an owner); only while no user exists',
      security: [],
      request: { body: jsonBody(Credentials) },
      responses: {
        201: jsonResponse(z.object({ user: UserSchema, session_token: z.string() }), 'The owner and a session token'),
        ...errorResponses(400, 409, 503),
      },
    }),
    async (c) => {
      const s = settings(c.env);
      const out = await createFirstUser(c.var.db, s, c.req.valid('json'));
      setSessionCookie(c, out.session_token, s.SESSION_LIFETIME_SECONDS);
      return c.json(out, 201);
    },
  )
  .openapi(
    createRoute({
      method: 'post',
      path: '/login',
      summary: 'Sign in with email and password',
      security: [],
      request: { body: jsonBody(z.object({ email: z.string().min(1).max(254), password: z.string().min(1).max(256) }).strict()) },
      responses: {
        201: jsonResponse(z.object({ session_token: z.string() }), 'A new session token'),
        ...errorResponses(400, 401, 403, 429, 503),
      },
    }),
    async (c) => {
      const s = settings(c.env);
      const { email, password } = c.req.valid('json');
      await countOrRefuse(c.env, clientOf(c.req.raw), 'login');
      const token = await login(c.var.db, s, email, password, requestIp(c.req.raw));
      setSessionCookie(c, token, s.SESSION_LIFETIME_SECONDS);
      return c.json({ session_token: token }, 201);
    },
  )
  .openapi(
    createRoute({
      method: 'post',
      path: '/logout',
      summary: 'Revoke the token this request used',
      middleware: [authorize('self')] as const,
      responses: { 204: { description: 'Revoked' }, ...errorResponses(401, 503) },
    }),
    async (c) => {
      const actor = c.var.actor;
      await revokeOwnKey(c.env, c.executionCtx, actor, actor.keyId);
      await audit(c.var.db, { action: 'user.logout', actor: { id: actor.userId, email: actor.email }, ip: requestIp(c.req.raw), target_type: 'user', target_id: actor.userId });
      deleteCookie(c, 'session_token', { path: '/' });
      return c.body(null, 204);
    },
  )
  .openapi(
    createRoute({
      method: 'post',
      path: '/',
      summary: 'Create a user (owner only)',
      middleware: [authorize('users.create')] as const,
      request: {
        body: jsonBody(
          Credentials.extend({
            roles: z.array(Role).min(1, { message: 'must name at least one role' }).optional(),
          }).strict(),
        ),
      },
      responses: { 201: jsonResponse(UserSchema, 'The new user'), ...errorResponses(400, 401, 403, 409, 503) },
    }),
    async (c) => {
      const body = c.req.valid('json');
      const a = c.var.actor;
      const user = await audited(
        c.var.db,
        (tx) => createUser(tx, settings(c.env), { ...body, roles: body.roles ?? ['member'] }),
        (u) => ({ action: 'user.created', actor: { id: a.userId, email: a.email }, ip: requestIp(c.req.raw), target_type: 'user', target_id: u.id, detail: { email: u.email, username: u.username, roles: u.roles } }),
      );
      return c.json(user, 201);
    },
  )
  .openapi(
    createRoute({
      method: 'get',
      path: '/me',
      summary: 'The signed-in user',
      middleware: [authorize('self')] as const,
      responses: { 200: jsonResponse(UserSchema, 'The signed-in user'), ...errorResponses(401, 503) },
    }),
    (c) => c.json(actorUser(c.var.actor), 200),
  );

export default app;
