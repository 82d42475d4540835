/**
 * Operations (owner): insights over the record of every model call, the debug-runs setting, and a chat's debug runs.
 */
import { createRoute, z } from '@hono/zod-openapi';
import { authorize } from '../authz';
import { errorResponses, IdParams, jsonBody, jsonResponse, router } from '../lib/openapi';
import { getSetting } from '../core/site-config';
import { auditBy } from '../services/audit';
import { saveSetting } from '../services/settings';
import { invalidateModelCache } from '../core/model-resolve';
import { DebugRunList, DebugRunsSetting, Insights, InsightsGroupBy } from '../core/shapes/operations';
import { chatDebugRuns, insights } from '../services/operations';

const owner = authorize('deployment.manage');
const DAY_MS = 86_400_000;
/** Insights read at most this many days (a year). */
const MAX_DAYS = 366;
const DEFAULT_DAYS = 30;

/** A UTC day (YYYY-MM-DD: its start) or an ISO date-time with an offset. */
const Instant = z
  .union([z.iso.date(), z.iso.datetime({ offset: true })], { message: 'must be a date (YYYY-MM-DD) or an ISO date-time' })
  .openapi({ description: 'A UTC day (YYYY-MM-DD) or an ISO 8601 date-time' });

const InsightsQuery = z
  .object({
    from: Instant.optional().openapi({ description: 'Start (included); default: 30 days before `to`' }),
    to: Instant.optional().openapi({ description: 'End (excluded; a day counts whole); default: now' }),
    group_by: InsightsGroupBy.default('day'),
  })
  .strict();

/** The window: `to` a day means through its end. */
function window(q: { from?: string | undefined; to?: string | undefined }): { from: Date; to: Date } {
  const to = q.to === undefined ? new Date() : new Date(q.to.length === 10 ? Date.parse(q.to) + DAY_MS : Date.parse(q.to));
  const from = q.from === undefined ? new Date(to.getTime() - DEFAULT_DAYS * DAY_MS) : new Date(Date.parse(q.from));
  return { from, to };
}

const Checked = InsightsQuery.superRefine((q, ctx) => {
  const { from, to } = window(q);
  if (from.getTime() >= to.getTime()) ctx.addIssue({ code: 'custom', path: ['from'], message: 'must be before to' });
  else if (to.getTime() - from.getTime() > MAX_DAYS * DAY_MS) ctx.addIssue({ code: 'custom', path: ['from'], message: `insights cover at most ${MAX_DAYS} days` });
});

const RunsQuery = z
  .object({ limit: z.coerce.number().int().min(1).max(100).default(20).openapi({ type: 'integer', minimum: 1, maximum: 100 }) })
  .strict();

const app = router()
  .openapi(
    createRoute({
      method: 'get',
      path: '/insights',
      summary: 'Model calls by model, provider, day or user (owner): errors by kind, p50/p95 latency, tokens, cost',
      middleware: owner,
      request: { query: Checked },
      responses: { 200: jsonResponse(Insights, 'The insights'), ...errorResponses(400, 401, 403, 503) },
    }),
    async (c) => {
      const q = c.req.valid('query');
      return c.json(await insights(c.var.db, { ...window(q), groupBy: q.group_by }), 200);
    },
  )
  .openapi(
    createRoute({
      method: 'get',
      path: '/chats/config/debug-runs',
      summary: 'Whether model calls keep debug runs (off, errors, all) and for how many days (owner)',
      middleware: owner,
      responses: { 200: jsonResponse(DebugRunsSetting, 'The setting'), ...errorResponses(401, 403, 503) },
    }),
    async (c) => c.json(await getSetting(c.var.db, 'debug_runs'), 200),
  )
  .openapi(
    createRoute({
      method: 'put',
      path: '/chats/config/debug-runs',
      summary: 'Set debug runs (owner); chat objects elsewhere apply it within 30 s',
      middleware: owner,
      request: { body: jsonBody(DebugRunsSetting) },
      responses: { 200: jsonResponse(DebugRunsSetting, 'The setting'), ...errorResponses(400, 401, 403, 503) },
    }),
    async (c) => {
      const value = await saveSetting(c.var.db, auditBy(c.var.actor, c.req.raw), 'debug_runs', c.req.valid('json'));
      // The objects read it with the model resolution: this isolate's cache sees it now, others within its TTL.
      invalidateModelCache();
      return c.json(value, 200);
    },
  )
  .openapi(
    createRoute({
      method: 'get',
      path: '/chats/{id}/debug-runs',
      summary: "A chat's debug runs, newest first (owner): each model call's request and response, credentials redacted",
      middleware: owner,
      request: { params: IdParams, query: RunsQuery },
      responses: { 200: jsonResponse(DebugRunList, 'The runs'), ...errorResponses(400, 401, 403, 404, 503) },
    }),
    async (c) => c.json({ runs: await chatDebugRuns(c.var.db, c.req.valid('param').id, c.req.valid('query').limit) }, 200),
  );

export default app;
