/**
 * Spend limits: a user's own limit and spend now (`/users/me/usage/limit`), and one user's own limit, which overrides
 * the deployment default (`/users/{id}/spend-limit`, owners). The default itself is with the other deployment
 * settings (routes/chat-config.ts).
 */
import { createRoute, z } from '@hono/zod-openapi';
import { authorize } from '../authz';
import { errorResponses, jsonBody, jsonResponse, router, UuidParam } from '../lib/openapi';
import { setUserSpendLimit, spendState, userSpendState } from '../services/spend-limits';
import { SpendLimit, SpendState } from '../core/shapes/usage';
import { auditBy, recordWith } from '../services/audit';

const manage = authorize('spend_limits.manage');

const app = router()
  .openapi(
    createRoute({
      method: 'get',
      path: '/users/me/usage/limit',
      summary: 'Your spend limit and what you spent in the current period',
      middleware: authorize('self'),
      responses: { 200: jsonResponse(SpendState, 'The limit now'), ...errorResponses(401, 503) },
    }),
    async (c) => c.json(await spendState(c.env, c.var.actor.userId), 200),
  )
  .openapi(
    createRoute({
      method: 'get',
      path: '/users/{id}/spend-limit',
      summary: "A user's spend limit and current spend (owner)",
      middleware: manage,
      request: { params: z.object({ id: UuidParam('id') }) },
      responses: { 200: jsonResponse(SpendState, 'The limit now'), ...errorResponses(400, 401, 403, 404, 503) },
    }),
    async (c) => c.json(await userSpendState(c.env, c.var.db, c.req.valid('param').id), 200),
  )
  .openapi(
    createRoute({
      method: 'put',
      path: '/users/{id}/spend-limit',
      summary: "Set one user's own spend limit (owner); amount null clears it, and the deployment default applies again",
      middleware: manage,
      request: { params: z.object({ id: UuidParam('id') }), body: jsonBody(SpendLimit) },
      responses: { 200: jsonResponse(SpendState, 'The limit now'), ...errorResponses(400, 401, 403, 404, 503) },
    }),
    async (c) => {
      const { id } = c.req.valid('param');
      const by = auditBy(c.var.actor, c.req.raw);
      const state = await setUserSpendLimit(c.env, c.var.db, c.var.actor.userId, id, c.req.valid('json'), recordWith((l) => ({
        action: 'spend_limit.updated', ...by, target_type: 'user', target_id: id, detail: { period: l.period, amount: l.amount },
      })));
      return c.json(state, 200);
    },
  );

export default app;
