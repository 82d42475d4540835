/**
 * Operations (see `chat.ts` for the rule): the insights over the record of every model call, the debug-runs setting
 * and the debug runs an owner reads per chat.
 */
import { z } from '@hono/zod-openapi';

export const InsightsGroupBy = z.enum(['model', 'provider', 'day', 'user']).openapi('InsightsGroupBy');
export type InsightsGroupBy = z.infer<typeof InsightsGroupBy>;

const Percentiles = z
  .object({ p50: z.number().nullable(), p95: z.number().nullable() })
  .openapi('InsightsPercentiles', { description: 'Milliseconds (percentile_cont); null when no call had the figure' });

export const InsightsRow = z
  .object({
    key: z.string().openapi({ description: 'The model as called, the provider, the UTC day (YYYY-MM-DD) or the user id' }),
    turns: z.number().int().openapi({ description: 'Model calls that ended in the window' }),
    errors: z.record(z.string(), z.number().int()).openapi({ description: 'Failed calls by error kind (auth, rate_limit, timeout, ...)' }),
    first_token_ms: Percentiles,
    total_ms: Percentiles,
    input_tokens: z.number().int(),
    output_tokens: z.number().int(),
    cost: z.string().openapi({ description: "A decimal string in the deployment's currency (unpriced calls count as 0)" }),
  })
  .openapi('InsightsRow');
export type InsightsRow = z.infer<typeof InsightsRow>;

export const Insights = z
  .object({
    from: z.iso.datetime(),
    to: z.iso.datetime(),
    group_by: InsightsGroupBy,
    rows: z.array(InsightsRow),
  })
  .openapi('Insights');
export type Insights = z.infer<typeof Insights>;

export const DebugRunsMode = z.enum(['off', 'errors', 'all']).openapi('DebugRunsMode', {
  description: 'off: none kept; errors: the failed model calls; all: every model call',
});
export type DebugRunsMode = z.infer<typeof DebugRunsMode>;

/** The deployment setting (site_configs key `debug_runs`). */
export const DebugRunsSetting = z
  .object({
    debug_runs: DebugRunsMode,
    retention_days: z.number().int().min(1).max(365).openapi({ description: 'Runs older than this are purged by the cron' }),
  })
  .strict()
  .openapi('DebugRunsSetting');
export type DebugRunsSetting = z.infer<typeof DebugRunsSetting>;
export const DEBUG_RUNS_DEFAULT: DebugRunsSetting = { debug_runs: 'off', retention_days: 7 };

export const DebugAttempt = z
  .object({
    at: z.iso.datetime(),
    status: z.enum(['ok', 'error']),
    error: z.string().optional(),
  })
  .openapi('DebugAttempt');
export type DebugAttempt = z.infer<typeof DebugAttempt>;

export const DebugRun = z
  .object({
    id: z.uuid(),
    started_at: z.iso.datetime(),
    model_config_id: z.uuid().nullable(),
    request: z.record(z.string(), z.unknown()).openapi({
      description: 'As sent: {provider, model, prompt, tools, settings}; credentials redacted, file bytes as metadata',
    }),
    response: z.record(z.string(), z.unknown()).openapi({ description: '{parts, finish_reason, usage} or {error: {kind, message}}' }),
    attempts: z.array(DebugAttempt),
    timings: z.record(z.string(), z.number().nullable()).openapi({ description: 'queue_ms, first_token_ms, total_ms' }),
  })
  .openapi('DebugRun');
export type DebugRun = z.infer<typeof DebugRun>;

export const DebugRunList = z.object({ runs: z.array(DebugRun) }).openapi('DebugRunList');
