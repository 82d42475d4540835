/**
 * The record of a model call (every call: the figures Insights aggregates, and the `{"event":"turn"}` log line) and,
 * with the deployment's `debug_runs` on, its debug run. Both ride on the write that stores the call's answer (the
 * `FinishEntry`, so through the outbox when Postgres cannot take it), never a statement of their own.
 */
import { z } from 'zod';
import { log } from '../../functions/core/log';
import { formatMicros } from '../../functions/core/usage-cost';
import type { CallTrace, ModelError, ModelResult } from '../llm/model';
import { answerCost } from '../../functions/core/usage-cost';
import { boundedRun, redact } from './debug-run';
import type { Turn } from './turn';

const Ms = z.number().int().min(0);
const Micros = z.string().regex(/^\d{1,19}$/);

/** A model call's figures, as stored in chat_turns (user_id comes from the chat row in the statement). */
export const TurnRecord = z.object({
  id: z.uuid(),
  turn_id: z.string().min(1),
  model_config_id: z.uuid().nullable(),
  provider: z.string(),
  model: z.string(),
  /** answered: text; tool_calls: it asked for tools; error: it failed (`error_kind`); stopped: interrupted. */
  outcome: z.enum(['answered', 'tool_calls', 'error', 'stopped']),
  error_kind: z.string().nullable(),
  queue_ms: Ms,
  first_token_ms: Ms.nullable(),
  total_ms: Ms,
  input_tokens: z.number().int().min(0),
  output_tokens: z.number().int().min(0),
  cost_micros: Micros.nullable(),
  tool_steps: z.number().int().min(0),
});
export type TurnRecord = z.infer<typeof TurnRecord>;

const Json = z.record(z.string(), z.unknown());

/** A debug run as kept until written (chat_debug_runs). */
export const DebugRunEntry = z.object({
  id: z.uuid(),
  model_config_id: z.uuid().nullable(),
  started_at: z.iso.datetime(),
  request: Json,
  response: Json,
  attempts: z.array(z.object({ at: z.string(), status: z.enum(['ok', 'error']), error: z.string().optional() })),
  timings: z.record(z.string(), z.number().nullable()),
});
export type DebugRunEntry = z.infer<typeof DebugRunEntry>;

export interface CallEnd {
  turn: Turn;
  chatId: string;
  trace: CallTrace;
  endedAt: number;
  result: ModelResult | null;
  failure: ModelError | null;
  /** Credentials the request may carry (the provider key, MCP header values): never stored. */
  secrets: readonly string[];
}

/** Built once: `z.uuid()` per call cost more than the whole record's other work (a scale test's CPU profile). */
const Uuid = z.uuid();
const uuidOrNull = (id: string): string | null => (Uuid.safeParse(id).success ? id : null);

/** The record of a call that ended, logged as one `{"event":"turn"}` line; with its debug run when the setting wants one. */
export function recordCall(end: CallEnd): { record: TurnRecord; debug: DebugRunEntry | null } {
  const { turn, trace, endedAt, result, failure } = end;
  const cfg = turn.resolved.config;
  const sentAt = trace.sentAt ?? endedAt;
  const stopped = result?.finishReason === 'aborted';
  const usage = result && !stopped ? result.usage : null;
  const cost = answerCost(cfg.pricing, usage, result?.usageKnown === true);
  const record: TurnRecord = {
    id: crypto.randomUUID(),
    turn_id: turn.id,
    model_config_id: uuidOrNull(cfg.id),
    provider: cfg.provider,
    model: cfg.model,
    outcome: failure ? 'error' : stopped ? 'stopped' : (result?.toolCalls.length ?? 0) > 0 ? 'tool_calls' : 'answered',
    error_kind: failure?.kind ?? null,
    queue_ms: Math.max(0, sentAt - turn.wantedAt),
    first_token_ms: trace.firstTokenAt === null ? null : Math.max(0, trace.firstTokenAt - sentAt),
    total_ms: Math.max(0, endedAt - sentAt),
    input_tokens: usage?.input_tokens ?? 0,
    output_tokens: usage?.output_tokens ?? 0,
    cost_micros: cost,
    tool_steps: result?.toolCalls.length ?? 0,
  };
  log('info', 'turn', {
    event: 'turn',
    chat_id: end.chatId,
    user_id: turn.ownerId,
    model_config_id: record.model_config_id,
    provider: record.provider,
    model: record.model,
    outcome: record.outcome,
    error_kind: record.error_kind,
    queue_ms: record.queue_ms,
    first_token_ms: record.first_token_ms,
    total_ms: record.total_ms,
    input_tokens: record.input_tokens,
    output_tokens: record.output_tokens,
    cost: cost === null ? null : formatMicros(BigInt(cost)),
    tool_steps: record.tool_steps,
  });
  const mode = turn.resolved.debugRuns;
  const wanted = mode === 'all' || (mode === 'errors' && failure !== null);
  return { record, debug: wanted ? debugRunOf(end, record) : null };
}

function debugRunOf(end: CallEnd, record: TurnRecord): DebugRunEntry {
  const { turn, trace, result, failure } = end;
  const cfg = turn.resolved.config;
  const response: Record<string, unknown> = failure
    ? { error: { kind: failure.kind, message: failure.message }, partial: failure.partial }
    : {
        parts: { text: result?.text ?? '', reasoning: result?.reasoning ?? '', tool_calls: result?.toolCalls ?? [] },
        finish_reason: result?.finishReason ?? null,
        usage: result?.usageKnown === true ? result.usage : null,
      };
  const run = {
    id: record.id,
    model_config_id: record.model_config_id,
    started_at: new Date(trace.sentAt ?? end.endedAt).toISOString(),
    request: { provider: cfg.provider, model: cfg.model, base_url: turn.resolved.provider.base_url, ...(trace.request ?? {}) },
    response,
    attempts: trace.attempts,
    timings: { queue_ms: record.queue_ms, first_token_ms: record.first_token_ms, total_ms: record.total_ms },
  };
  return DebugRunEntry.parse(boundedRun(redact(run, end.secrets)));
}
