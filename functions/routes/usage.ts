/** Usage reports: a user's own (`/users/me/usage`), and the owners' deployment-wide one (`/usage`), JSON or CSV. */
import { createRoute, z } from '@hono/zod-openapi';
import type { Context } from 'hono';
import { authorize, type AuthedEnv } from '../authz';
import { errorResponses, router } from '../lib/openapi';
import { utcDay } from '../core/usage-meter-api';
import { reportCsv, usageReport, type ReportQuery } from '../services/usage-reports';
import { GroupBy, UsageReport } from '../core/shapes/usage';

const DAY_MS = 86_400_000;
/** A report reads at most this many days (a year), so it stays one short index range. */
const MAX_DAYS = 366;

const Day = z.iso.date({ message: 'must be a UTC date, YYYY-MM-DD' });
const ReportParams = {
  from: Day.optional().openapi({ description: 'First UTC day (included); default: the first day of the month of `to`' }),
  to: Day.optional().openapi({ description: 'Last UTC day (included); default: today' }),
  format: z.enum(['json', 'csv']).default('json'),
};

/** The query's days with their defaults. */
function days(q: { from?: string | undefined; to?: string | undefined }): { from: string; to: string } {
  const to = q.to ?? utcDay(Date.now());
  return { from: q.from ?? `${to.slice(0, 7)}-01`, to };
}

/** The report's days are in order, at most MAX_DAYS. */
function range(q: { from?: string | undefined; to?: string | undefined }, ctx: z.RefinementCtx): void {
  const { from, to } = days(q);
  const n = (Date.parse(to) - Date.parse(from)) / DAY_MS + 1;
  if (n < 1) ctx.addIssue({ code: 'custom', path: ['from'], message: 'must not be after to' });
  else if (n > MAX_DAYS) ctx.addIssue({ code: 'custom', path: ['from'], message: `a report covers at most ${MAX_DAYS} days` });
}

const MyQuery = z
  .object({ ...ReportParams, group_by: GroupBy.exclude(['user']).default('day') })
  .strict()
  .superRefine(range);
const AllQuery = z
  .object({
    ...ReportParams,
    group_by: GroupBy.default('day'),
    user_id: z.uuid({ message: 'must be a UUID' }).optional().openapi({ description: "Only this user's usage" }),
  })
  .strict()
  .superRefine(range);

const reportResponse = {
  description: 'The report (JSON), or its groups as CSV with format=csv',
  content: { 'application/json': { schema: UsageReport }, 'text/csv': { schema: z.string() } },
};

/** Answers a report as JSON, or as a CSV download. */
async function answerReport(c: Context<AuthedEnv>, q: ReportQuery, format: 'json' | 'csv') {
  const report = await usageReport(c.var.db, q);
  if (format === 'json') return c.json(report, 200);
  const name = `usage-${report.from}-${report.to}-by-${report.group_by}.csv`;
  return c.body(reportCsv(report), 200, { 'content-type': 'text/csv; charset=utf-8', 'content-disposition': `attachment; filename="${name}"` });
}

const self = authorize('self');

const app = router()
  .openapi(
    createRoute({
      method: 'get',
      path: '/users/me/usage',
      summary: 'Your usage and spend over UTC days, grouped by day, model or chat',
      middleware: self,
      request: { query: MyQuery },
      responses: { 200: reportResponse, ...errorResponses(400, 401, 503) },
    }),
    async (c) => {
      const q = c.req.valid('query');
      return await answerReport(c, { userId: c.var.actor.userId, ...days(q), groupBy: q.group_by }, q.format);
    },
  )
  .openapi(
    createRoute({
      method: 'get',
      path: '/usage',
      summary: "Everyone's usage and spend (owner), also by user; format=csv exports it",
      middleware: authorize('usage.read_all'),
      request: { query: AllQuery },
      responses: { 200: reportResponse, ...errorResponses(400, 401, 403, 503) },
    }),
    async (c) => {
      const q = c.req.valid('query');
      return await answerReport(c, { userId: q.user_id ?? null, ...days(q), groupBy: q.group_by }, q.format);
    },
  );

export default app;
