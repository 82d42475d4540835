/**
 * One model call for a turn, through the AI SDK's providers: the provider's model is built from the resolved
 * config (once per isolate), options are passed through, deltas are reported as they arrive, and failures come
 * back classified without any provider response body (which can echo keys or prompts).
 *
 * The call goes straight to the provider model's `doStream` rather than through `streamText`: a model call is one
 * step (the tool loop is the chat object's, durable step by step), and `streamText`'s step, tool, telemetry and output machinery (a dozen stream
 * stages per chunk) cost more CPU than the rest of the turn. Measured inside workerd against the mock model
 * (20 deltas): ~13 ms per call through `streamText` with a model built per call, ~6 ms through `doStream` on a
 * cached model. What `streamText` did that a turn needs is done here: the prompt in the provider's format,
 * retries of retryable failures before the stream starts, and usage in our shape.
 */
import { createAnthropic } from '@ai-sdk/anthropic';
import { createGoogleGenerativeAI } from '@ai-sdk/google';
import { createOpenAI } from '@ai-sdk/openai';
import { createOpenAICompatible } from '@ai-sdk/openai-compatible';
import { APICallError, UnsupportedFunctionalityError, type ModelMessage } from 'ai';
import type { ResolvedModel } from '../../functions/core/model-resolve';
import type { ModelOptions } from '../../functions/core/shapes/models';
import type { TokenUsage } from '../../functions/core/chats';

import type { CallOptions, ProviderModel, ProviderTool, ProviderUsage } from './provider-types';
import { leanCompatModel } from './lean-compat';
import { toPrompt } from './prompt';

export type { ProviderModel } from './provider-types';

/** A tool offered to the model: its (namespaced) name, what it does, and a JSON Schema of its arguments. */
export interface ModelTool {
  name: string;
  description: string;
  inputSchema: Record<string, unknown>;
}

/** A tool call the model made: `input` is the JSON text of its arguments, as the model wrote it. */
export interface ModelToolCall {
  toolCallId: string;
  toolName: string;
  input: string;
}

export interface ModelDelta {
  type: 'text' | 'reasoning';
  text: string;
}

export interface ModelCall {
  resolved: ResolvedModel;
  /** The provider's API key, opened by the runner just for this call. */
  apiKey: string | null;
  system: string | undefined;
  messages: ModelMessage[];
  signal: AbortSignal;
  onDelta: (d: ModelDelta) => void;
  /** Abort when no chunk arrives for this long. */
  idleTimeoutMs: number;
  maxRetries: number;
  /** A model to use instead of the one the resolved provider builds (unit tests use the AI SDK's mock). */
  model?: ProviderModel;
  /** Tools the model may call (none: a text-only call). */
  tools?: readonly ModelTool[];
  /** Filled as the call goes: when it was sent, its first token, each attempt, and (with `capture`) the request. */
  trace?: CallTrace;
}

/** What a call's record and debug run read of it (times in ms since the epoch). */
export interface CallTrace {
  /** Keep the request as sent in `request` (a debug run wants it). */
  capture: boolean;
  /** The first attempt was sent. */
  sentAt: number | null;
  /** The first token (text, reasoning or a tool call) arrived. */
  firstTokenAt: number | null;
  /** Each attempt to open the stream: retried failures, then the last one. Errors are this server's safe texts. */
  attempts: { at: string; status: 'ok' | 'error'; error?: string }[];
  /** The request as sent (the prompt, the tools, the settings), when `capture`. */
  request: Record<string, unknown> | null;
}

export const newTrace = (capture: boolean): CallTrace => ({ capture, sentAt: null, firstTokenAt: null, attempts: [], request: null });

export interface ModelResult {
  text: string;
  reasoning: string;
  usage: TokenUsage;
  /** Whether the provider reported usage; when it did not, `usage` is zeros and the answer is flagged as unpriced. */
  usageKnown: boolean;
  /** How the call ended: `stop`, `length`, `tool-calls`, ... or `aborted` when interrupted. */
  finishReason: string;
  /** The tool calls the model made, in order (empty when it answered in text). */
  toolCalls: ModelToolCall[];
}

/** A failed model call, safe to show: `kind` is one of the kinds below, `message` has no provider text. */
export class ModelError extends Error {
  constructor(
    readonly kind: 'auth' | 'rate_limit' | 'invalid_request' | 'provider_error' | 'timeout' | 'network' | 'config',
    message: string,
    /** What was streamed before the failure. */
    readonly partial: { text: string; reasoning: string } = { text: '', reasoning: '' },
  ) {
    super(message);
    this.name = 'ModelError';
  }
}

/**
 * Built provider models, per isolate. Building one costs more than a short turn (the provider compiles its
 * response schemas), so a model is reused while its provider row, base URL, model id and key are the same.
 */
const models = new Map<string, { apiKey: string | null; model: ProviderModel }>();
const MAX_MODELS = 64;

export function languageModel(resolved: ResolvedModel, apiKey: string | null): ProviderModel {
  const key = `${resolved.provider.id}\u0000${resolved.provider.provider}\u0000${resolved.provider.base_url}\u0000${resolved.config.model}`;
  const hit = models.get(key);
  if (hit && hit.apiKey === apiKey) return hit.model;
  const model = buildModel(resolved, apiKey);
  if (models.size >= MAX_MODELS) models.clear();
  models.set(key, { apiKey, model });
  return model;
}

function buildModel(resolved: ResolvedModel, apiKey: string | null): ProviderModel {
  const baseURL = resolved.provider.base_url || undefined;
  const key = apiKey ?? undefined;
  const model = resolved.config.model;
  switch (resolved.provider.provider) {
    case 'openai':
      return createOpenAI({ apiKey: key, baseURL })(model);
    case 'anthropic':
      return createAnthropic({ apiKey: key, baseURL })(model);
    case 'google':
      return createGoogleGenerativeAI({ apiKey: key, baseURL })(model);
    case 'openrouter':
      return createOpenAICompatible({
        name: 'openrouter',
        baseURL: baseURL ?? 'https://openrouter.ai/api/v1',
        apiKey: key,
        includeUsage: true,
      })(model);
    case 'openai-compat':
      if (!baseURL) throw new ModelError('config', 'The openai-compat provider has no base_url configured.');
      return leanCompatModel({ baseURL, apiKey: key, fallback: createOpenAICompatible({ name: 'openai-compat', baseURL, apiKey: key, includeUsage: true })(model) });
    default:
      throw new ModelError('config', `Provider type "${resolved.provider.provider}" is not supported.`);
  }
}

/** Model options from a config, in the AI SDK's names. */
export function callSettings(o: ModelOptions) {
  return {
    maxOutputTokens: o.max_output_tokens,
    temperature: o.temperature,
    topP: o.top_p,
    topK: o.top_k,
    presencePenalty: o.presence_penalty,
    frequencyPenalty: o.frequency_penalty,
    providerOptions: o.provider_options as CallOptions['providerOptions'],
  };
}

/**
 * The AI SDK's normalized usage in our shape. Every provider package here reports input tokens including cache reads
 * and writes (`inputTokens.total`, with `cacheRead` and `cacheWrite` as parts of it; Anthropic's own counts are
 * summed into it) and output tokens including reasoning (`outputTokens.total`, with `reasoning` as a part), which is
 * what pricing splits (functions/core/usage-cost.ts). Missing counts are zeros; see `usageReported`.
 */
export function toUsage(u: ProviderUsage | undefined): TokenUsage {
  const input = u?.inputTokens.total ?? 0;
  const output = u?.outputTokens.total ?? 0;
  return {
    input_tokens: input,
    output_tokens: output,
    total_tokens: input + output,
    reasoning_tokens: u?.outputTokens.reasoning ?? 0,
    cache_read_tokens: u?.inputTokens.cacheRead ?? 0,
    cache_creation_tokens: u?.inputTokens.cacheWrite ?? 0,
  };
}

/** Whether a provider reported usage at all (a provider that sends none gives the SDK's all-undefined usage). */
export function usageReported(u: ProviderUsage | undefined): boolean {
  return u !== undefined && (u.inputTokens.total !== undefined || u.outputTokens.total !== undefined);
}

/** Tools in the provider's format. */
function providerTools(tools: readonly ModelTool[] | undefined): { tools?: ProviderTool[] } {
  if (!tools || tools.length === 0) return {};
  return { tools: tools.map((t): ProviderTool => ({ type: 'function', name: t.name, description: t.description, inputSchema: t.inputSchema })) };
}

const RETRY_BASE_MS = 2000;

/** How long to wait before retry number `attempt` (0-based): the provider's retry-after when sane, else 2 s, 4 s, ... */
export function retryDelayMs(e: APICallError, attempt: number): number {
  const h = e.responseHeaders ?? {};
  const ms = Number(h['retry-after-ms']);
  if (Number.isFinite(ms) && ms >= 0 && ms <= 60_000) return ms;
  const s = Number(h['retry-after']);
  if (Number.isFinite(s) && s >= 0 && s <= 60) return s * 1000;
  return RETRY_BASE_MS * 2 ** attempt;
}

function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      if (signal.aborted) reject(new Error('aborted'));
      else resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done);
  });
}

/** Starts the provider's stream; a retryable failure before it starts (429, 5xx, network) is tried again. */
async function openStream(model: ProviderModel, options: CallOptions, maxRetries: number, signal: AbortSignal, trace?: CallTrace) {
  for (let attempt = 0; ; attempt++) {
    const at = new Date().toISOString();
    try {
      const opened = await model.doStream(options);
      trace?.attempts.push({ at, status: 'ok' });
      return opened;
    } catch (e) {
      trace?.attempts.push({ at, status: 'error', error: classify(e, { text: '', reasoning: '' }, false).message });
      if (attempt >= maxRetries || signal.aborted || !APICallError.isInstance(e) || !e.isRetryable) throw e;
      await pause(retryDelayMs(e, attempt), signal);
    }
  }
}

/** Turns whatever the SDK threw into a ModelError without provider text. */
export function classify(e: unknown, partial: { text: string; reasoning: string }, timedOut: boolean): ModelError {
  if (e instanceof ModelError) return new ModelError(e.kind, e.message, partial);
  if (timedOut) return new ModelError('timeout', 'The model did not answer in time.', partial);
  if (UnsupportedFunctionalityError.isInstance(e)) {
    return new ModelError('invalid_request', `The model's provider cannot take this input (${e.functionality}); remove the file or pick another model.`, partial);
  }
  const api = findApiCallError(e);
  if (api) {
    const s = api.statusCode;
    if (s === 401 || s === 403) return new ModelError('auth', `The model provider rejected the API key (HTTP ${s}).`, partial);
    if (s === 429) return new ModelError('rate_limit', 'The model provider is rate limiting requests (HTTP 429).', partial);
    if (s !== undefined && s >= 400 && s < 500)
      return new ModelError('invalid_request', `The model provider rejected the request (HTTP ${s}).`, partial);
    if (s !== undefined) return new ModelError('provider_error', `The model provider failed (HTTP ${s}).`, partial);
    return new ModelError('network', 'Could not reach the model provider.', partial);
  }
  return new ModelError('network', 'The model call failed before completing.', partial);
}

function findApiCallError(e: unknown): APICallError | null {
  for (let cur: unknown = e, depth = 0; cur && depth < 5; depth++) {
    if (APICallError.isInstance(cur)) return cur;
    if (typeof cur === 'object' && 'lastError' in cur) cur = cur.lastError;
    else if (cur instanceof Error) cur = cur.cause;
    else break;
  }
  return null;
}

/** Runs one streamed model call. Resolves with `finishReason: 'aborted'` when `signal` aborts it. */
export async function callModel(call: ModelCall): Promise<ModelResult> {
  const partial = { text: '', reasoning: '' };
  const local = new AbortController();
  const state = { timedOut: false };
  // One timer for the whole call: a chunk only records when it came, and the timer, when it fires, either
  // times the call out or waits for the rest of the window (no clearTimeout/setTimeout pair per chunk).
  let lastChunkAt = Date.now();
  let idle: ReturnType<typeof setTimeout> | undefined;
  const check = () => {
    const quiet = Date.now() - lastChunkAt;
    if (quiet >= call.idleTimeoutMs) {
      idle = undefined;
      state.timedOut = true;
      local.abort(new Error('idle timeout'));
      return;
    }
    idle = setTimeout(check, call.idleTimeoutMs - quiet);
  };
  const arm = () => {
    lastChunkAt = Date.now();
    idle ??= setTimeout(check, call.idleTimeoutMs);
  };
  const onOuterAbort = () => {
    local.abort(new Error('interrupted'));
  };
  call.signal.addEventListener('abort', onOuterAbort);
  try {
    arm();
    const model = call.model ?? languageModel(call.resolved, call.apiKey);
    const request = {
      prompt: toPrompt(call.system, call.messages, (call.tools?.length ?? 0) > 0),
      ...callSettings(call.resolved.config.options),
      ...providerTools(call.tools),
    };
    const trace = call.trace;
    if (trace) {
      trace.sentAt = Date.now();
      if (trace.capture) trace.request = { ...request };
    }
    const { stream } = await openStream(model, { ...request, abortSignal: local.signal }, call.maxRetries, local.signal, trace);
    let usage: ProviderUsage | undefined;
    let finishReason = 'stop';
    const toolCalls: ModelToolCall[] = [];
    for await (const part of stream) {
      arm();
      if (trace && trace.firstTokenAt === null && (part.type === 'text-delta' || part.type === 'reasoning-delta' || part.type === 'tool-call')) {
        trace.firstTokenAt = Date.now();
      }
      switch (part.type) {
        case 'text-delta':
          if (part.delta) {
            partial.text += part.delta;
            call.onDelta({ type: 'text', text: part.delta });
          }
          break;
        case 'reasoning-delta':
          if (part.delta) {
            partial.reasoning += part.delta;
            call.onDelta({ type: 'reasoning', text: part.delta });
          }
          break;
        case 'tool-call':
          if (!part.providerExecuted) toolCalls.push({ toolCallId: part.toolCallId, toolName: part.toolName, input: part.input });
          break;
        case 'finish':
          usage = part.usage;
          finishReason = part.finishReason.unified;
          break;
        case 'error':
          throw part.error;
        default:
          break;
      }
    }
    if (call.signal.aborted) finishReason = 'aborted';
    else if (state.timedOut) throw new ModelError('timeout', 'The model did not answer in time.');
    return { text: partial.text, reasoning: partial.reasoning, usage: toUsage(usage), usageKnown: usageReported(usage), finishReason, toolCalls };
  } catch (e) {
    if (call.signal.aborted && !state.timedOut) {
      return { text: partial.text, reasoning: partial.reasoning, usage: toUsage(undefined), usageKnown: false, finishReason: 'aborted', toolCalls: [] };
    }
    throw classify(e, partial, state.timedOut);
  } finally {
    if (idle !== undefined) clearTimeout(idle);
    call.signal.removeEventListener('abort', onOuterAbort);
  }
}
