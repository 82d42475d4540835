/** /api/v2/users/me/{keys,sessions,password}: a user's own credentials. */
import { createRoute, z } from '@hono/zod-openapi';
import { authorize } from '../authz';
import { settings } from '../env';
import { ApiError, notFound } from '../core/errors';
import { errorResponses, jsonBody, jsonResponse, router } from '../lib/openapi';
import { clientOf, countOrRefuse } from '../lib/rate-limit';
import { changePassword, listOwnKeys, revokeOtherSessions, revokeOwnKey } from '../services/credentials';
import { createKey } from '../services/users';
import { audit, audited, auditBy, recordWith } from '../services/audit';
import { Password } from './users';

const self = authorize('self');

const KeySchema = z
  .object({
    id: z.string(),
    name: z.string(),
    created_at: z.iso.datetime(),
    expires_at: z.iso.datetime(),
    last_used_at: z.iso.datetime().nullable().openapi({ description: 'Updated at most once an hour' }),
  })
  .openapi('ApiKey');

const app = router()
  .openapi(
    createRoute({
      method: 'get',
      path: '/me/keys',
      summary: 'Your API keys (not sessions), newest first; secrets are never shown again',
      middleware: self,
      responses: { 200: jsonResponse(z.array(KeySchema), 'Your API keys'), ...errorResponses(401, 503) },
    }),
    async (c) => c.json(await listOwnKeys(c.var.db, c.var.actor.userId), 200),
  )
  .openapi(
    createRoute({
      method: 'post',
      path: '/me/keys',
      summary: 'Create an API key (shown once)',
      middleware: self,
      request: {
        body: jsonBody(
          z
            .object({
              name: z.string().max(64).optional(),
              lifetime_seconds: z.number().int().min(60, { message: 'must be at least 60' }).optional(),
            })
            .strict(),
          false,
        ),
      },
      responses: {
        201: jsonResponse(z.object({ id: z.string(), key: z.string() }), 'The key, shown only in this response'),
        ...errorResponses(400, 401, 503),
      },
    }),
    async (c) => {
      const s = settings(c.env);
      const body = c.req.valid('json');
      const lifetime = body.lifetime_seconds ?? Math.min(30 * 86400, s.API_KEY_MAX_LIFETIME_SECONDS);
      if (lifetime > s.API_KEY_MAX_LIFETIME_SECONDS) {
        throw new ApiError(400, 'Validation failed.', undefined, [
          { field: 'lifetime_seconds', detail: `must be at most ${s.API_KEY_MAX_LIFETIME_SECONDS}` },
        ]);
      }
      const by = auditBy(c.var.actor, c.req.raw);
      const key = await audited(
        c.var.db,
        (tx) => createKey(tx, c.var.actor.userId, 'api_key', body.name ?? '', lifetime),
        // The key's id, name and expiry: never the key itself.
        (k) => ({ action: 'key.created', ...by, target_type: 'key', target_id: k.id, detail: { name: body.name ?? '', expires_at: k.expires_at.toISOString() } }),
      );
      return c.json({ id: key.id, key: key.key }, 201);
    },
  )
  .openapi(
    createRoute({
      method: 'delete',
      path: '/me/keys/{id}',
      summary: 'Revoke one of your API keys or sessions',
      middleware: self,
      request: {
        params: z.object({
          id: z
            .string()
            .regex(/^[a-z0-9]{10}$/, { message: 'must be a key id' })
            .openapi({ param: { name: 'id', in: 'path' } }),
        }),
      },
      responses: { 204: { description: 'Revoked' }, ...errorResponses(400, 401, 404, 503) },
    }),
    async (c) => {
      const { id } = c.req.valid('param');
      if (!(await revokeOwnKey(c.env, c.executionCtx, c.var.actor, id))) throw notFound();
      // The key's shard deletes its row (not this connection): the event follows the deletion, as user.logout does.
      await audit(c.var.db, { action: 'key.deleted', ...auditBy(c.var.actor, c.req.raw), target_type: 'key', target_id: id });
      return c.body(null, 204);
    },
  )
  .openapi(
    createRoute({
      method: 'delete',
      path: '/me/sessions',
      summary: 'Revoke every session of yours but the one this request uses (API keys stay)',
      middleware: self,
      responses: { 204: { description: 'Revoked' }, ...errorResponses(401, 503) },
    }),
    async (c) => {
      const by = auditBy(c.var.actor, c.req.raw);
      await revokeOtherSessions(c.env, c.executionCtx, c.var.db, c.var.actor, recordWith((n) => ({
        action: 'sessions.revoked', ...by, target_type: 'user', target_id: c.var.actor.userId, detail: { revoked: n },
      })));
      return c.body(null, 204);
    },
  )
  .openapi(
    createRoute({
      method: 'put',
      path: '/me/password',
      summary: 'Change your password; your other sessions are revoked (API keys stay)',
      middleware: self,
      request: { body: jsonBody(z.object({ old_password: z.string().min(1).max(256), new_password: Password }).strict()) },
      responses: { 204: { description: 'Changed' }, ...errorResponses(400, 401, 429, 503) },
    }),
    async (c) => {
      // Checking the old password is a login attempt: the same per-IP limit.
      await countOrRefuse(c.env, clientOf(c.req.raw), 'login');
      const by = auditBy(c.var.actor, c.req.raw);
      await changePassword(c.env, c.executionCtx, c.var.db, settings(c.env), c.var.actor, c.req.valid('json'), recordWith((n) => ({
        action: 'password.changed', ...by, target_type: 'user', target_id: c.var.actor.userId, detail: { sessions_revoked: n },
      })));
      return c.body(null, 204);
    },
  );

export default app;
