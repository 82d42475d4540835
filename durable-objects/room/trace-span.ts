/**
 * Workers tracing (wrangler.toml `[observability.traces]`): a named span around each step of a turn (the model call
 * and the tools it asked for), with the attributes an operator filters on. The runtime nests the automatic spans of
 * the step (the provider's fetch, MCP servers' fetches, Postgres' WebSocket) under it. Where tracing is off, or the
 * runtime has no `tracing` (older workerd, tests), the step runs as it is.
 *
 * Attributes: chat.id, turn.id, model_config.id, llm.provider, llm.model; when the step ends: turn.outcome,
 * turn.error_kind, turn.queue_ms, turn.first_token_ms, turn.total_ms, llm.input_tokens, llm.output_tokens,
 * turn.tool_steps (the same figures as the `{"event":"turn"}` log line, docs/operations.md).
 */
import * as workers from 'cloudflare:workers';
import type { TurnRecord } from './turn-record';

type Attr = boolean | number | string;
type SetAttrs = (attrs: Record<string, Attr | null | undefined>) => void;

function runtimeTracing(): Tracing | null {
  const t: unknown = Reflect.get(workers, 'tracing');
  return t !== null && typeof t === 'object' && typeof Reflect.get(t, 'enterSpan') === 'function' ? (t as Tracing) : null;
}

/** Runs `fn` inside a span named `name` carrying `attrs`; `fn` may add more with its `set`. */
export function inSpan<T>(name: string, attrs: Record<string, Attr | null | undefined>, fn: (set: SetAttrs) => Promise<T>): Promise<T> {
  const tracing = runtimeTracing();
  if (!tracing) return fn(() => undefined);
  return tracing.enterSpan(name, (span) => {
    const set: SetAttrs = (a) => {
      if (!span.isTraced) return;
      for (const [k, v] of Object.entries(a)) if (v !== null && v !== undefined) span.setAttribute(k, v);
    };
    set(attrs);
    return fn(set);
  });
}

/** A turn record's figures as span attributes. */
export function recordAttributes(r: TurnRecord): Record<string, Attr | null> {
  return {
    'turn.outcome': r.outcome,
    'turn.error_kind': r.error_kind,
    'turn.queue_ms': r.queue_ms,
    'turn.first_token_ms': r.first_token_ms,
    'turn.total_ms': r.total_ms,
    'llm.input_tokens': r.input_tokens,
    'llm.output_tokens': r.output_tokens,
    'turn.tool_steps': r.tool_steps,
  };
}
