/** /api/v2/users (owner): the list of users, and roles and suspension. */
import { createRoute, z } from '@hono/zod-openapi';
import { authorize, Role } from '../authz';
import { errorResponses, jsonBody, jsonResponse, router, UuidParam } from '../lib/openapi';
import { listUsers, patchUser } from '../services/user-admin';
import { auditBy, recordWith } from '../services/audit';
import { UserSchema } from './users';

const manage = authorize('users.manage');

const AdminUserSchema = UserSchema.extend({
  suspended: z.boolean().openapi({ description: "A suspended user's tokens do not work and they cannot sign in" }),
}).openapi('AdminUser');

const app = router()
  .openapi(
    createRoute({
      method: 'get',
      path: '/',
      summary: 'Every user, oldest first (owner)',
      middleware: manage,
      request: {
        query: z.object({
          limit: z.coerce.number().int().min(1).max(200).default(50),
          offset: z.coerce.number().int().min(0).max(1_000_000).default(0),
        }),
      },
      responses: { 200: jsonResponse(z.array(AdminUserSchema), 'Users'), ...errorResponses(400, 401, 403, 503) },
    }),
    async (c) => {
      const q = c.req.valid('query');
      return c.json(await listUsers(c.var.db, q.limit, q.offset), 200);
    },
  )
  .openapi(
    createRoute({
      method: 'patch',
      path: '/{id}',
      summary: "Change a user's roles or suspend them (owner); a suspension revokes all of their tokens at once",
      middleware: manage,
      request: {
        params: z.object({ id: UuidParam('id') }),
        body: jsonBody(
          z
            .object({
              roles: z.array(Role).min(1, { message: 'must name at least one role' }).optional(),
              suspended: z.boolean().optional(),
            })
            .strict()
            .refine((p) => p.roles !== undefined || p.suspended !== undefined, { message: 'give roles or suspended' }),
        ),
      },
      responses: { 200: jsonResponse(AdminUserSchema, 'The user'), ...errorResponses(400, 401, 403, 404, 409, 503) },
    }),
    async (c) => {
      const { id } = c.req.valid('param');
      const patch = c.req.valid('json');
      const by = auditBy(c.var.actor, c.req.raw);
      const user = await patchUser(c.env, c.executionCtx, c.var.db, id, patch, recordWith((u) => ({
        action: 'user.updated', ...by, target_type: 'user', target_id: u.id,
        detail: { email: u.email, ...(patch.roles ? { roles: u.roles } : {}), ...(patch.suspended !== undefined ? { suspended: u.suspended } : {}) },
      })));
      return c.json(user, 200);
    },
  );

export default app;
