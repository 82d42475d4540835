import { createRoute, z } from '@hono/zod-openapi';
import { DbUnavailableError } from '../core/errors';
import { jsonResponse, router } from '../lib/openapi';

const Health = z.object({ status: z.literal('ok') }).openapi('Health');
const Unhealthy = z.object({ status: z.literal('unavailable'), message: z.string(), reason: z.string() }).openapi('Unhealthy');

const app = router().openapi(
  createRoute({
    method: 'get',
    path: '/healthz',
    summary: 'Liveness and database reachability',
    security: [],
    responses: {
      200: jsonResponse(Health, 'The Worker answers and Postgres is reachable'),
      503: jsonResponse(Unhealthy, 'Postgres is unreachable'),
    },
  }),
  async (c) => {
    try {
      await c.var.db.query('SELECT 1', []);
      return c.json({ status: 'ok' as const }, 200);
    } catch (e) {
      if (!(e instanceof DbUnavailableError)) throw e;
      return c.json({ status: 'unavailable' as const, message: 'The database is unavailable.', reason: e.reason }, 503);
    }
  },
);

export default app;
