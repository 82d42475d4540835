/** /api/v2/audit (owner): the audit log, newest first, filtered and paged, as JSON or CSV. */
import { createRoute, z } from '@hono/zod-openapi';
import { authorize } from '../authz';
import { errorResponses, router } from '../lib/openapi';
import { AuditEvent, AuditQuery } from '../core/shapes/sso';
import { listAudit, toCsv } from '../services/audit-query';

const app = router().openapi(
  createRoute({
    method: 'get',
    path: '/audit',
    summary: 'The audit log (owner): every security and admin event, newest first; format=csv for a download',
    middleware: authorize('deployment.manage'),
    request: { query: AuditQuery },
    responses: {
      200: {
        description: 'The events (JSON), or the same rows as CSV',
        content: {
          'application/json': { schema: z.object({ events: z.array(AuditEvent) }) },
          'text/csv': { schema: z.string() },
        },
      },
      ...errorResponses(400, 401, 403, 503),
    },
  }),
  async (c) => {
    const q = c.req.valid('query');
    const events = await listAudit(c.var.db, q);
    if (q.format === 'csv') {
      return c.body(toCsv(events), 200, { 'content-type': 'text/csv; charset=utf-8', 'content-disposition': 'attachment; filename="audit.csv"' });
    }
    return c.json({ events }, 200);
  },
);

export default app;
