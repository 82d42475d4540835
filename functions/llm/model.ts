/**
 * One model call for a turn, through the AI SDK: the provider is built from the resolved config, options are
 * passed through, deltas are reported as they arrive, and failures come back classified without any provider
 * response body (which can echo keys or prompts).
 */
import { createAnthropic } from '@ai-sdk/anthropic';
import { createGoogleGenerativeAI } from '@ai-sdk/google';
import { createOpenAI } from '@ai-sdk/openai';
import { createOpenAICompatible } from '@ai-sdk/openai-compatible';
import { APICallError, streamText, type LanguageModel, type LanguageModelUsage, type ModelMessage } from 'ai';
import type { ModelOptions, ResolvedModel } from '../services/chat-models';
import type { Usage } from '../services/chats';

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
  model?: LanguageModel;
}

export interface ModelResult {
  text: string;
  reasoning: string;
  usage: Usage;
  /** How the call ended: `stop`, `length`, ... or `aborted` when interrupted. */
  finishReason: string;
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

export function languageModel(resolved: ResolvedModel, apiKey: string | null): LanguageModel {
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
      return createOpenAICompatible({ name: 'openai-compat', baseURL, apiKey: key, includeUsage: true })(model);
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
    providerOptions: o.provider_options as Record<string, Record<string, never>> | undefined,
  };
}

export function toUsage(u: LanguageModelUsage | undefined): Usage {
  const input = u?.inputTokens ?? 0;
  const output = u?.outputTokens ?? 0;
  return {
    input_tokens: input,
    output_tokens: output,
    total_tokens: u?.totalTokens ?? input + output,
    reasoning_tokens: u?.outputTokenDetails.reasoningTokens ?? 0,
    cache_read_tokens: u?.inputTokenDetails.cacheReadTokens ?? 0,
    cache_creation_tokens: u?.inputTokenDetails.cacheWriteTokens ?? 0,
  };
}

/** Turns whatever the SDK threw into a ModelError without provider text. */
export function classify(e: unknown, partial: { text: string; reasoning: string }, timedOut: boolean): ModelError {
  if (e instanceof ModelError) return new ModelError(e.kind, e.message, partial);
  if (timedOut) return new ModelError('timeout', 'The model did not answer in time.', partial);
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
  let idle: ReturnType<typeof setTimeout> | undefined;
  const arm = () => {
    if (idle !== undefined) clearTimeout(idle);
    idle = setTimeout(() => {
      state.timedOut = true;
      local.abort(new Error('idle timeout'));
    }, call.idleTimeoutMs);
  };
  const onOuterAbort = () => {
    local.abort(new Error('interrupted'));
  };
  call.signal.addEventListener('abort', onOuterAbort);
  try {
    arm();
    const model = call.model ?? languageModel(call.resolved, call.apiKey);
    const result = streamText({
      model,
      instructions: call.system,
      messages: call.messages,
      abortSignal: local.signal,
      maxRetries: call.maxRetries,
      // The SDK logs failures with the provider's response body by default; we classify them instead.
      onError: () => undefined,
      ...callSettings(call.resolved.config.options),
    });
    let usage: LanguageModelUsage | undefined;
    let finishReason = 'stop';
    for await (const part of result.stream) {
      arm();
      switch (part.type) {
        case 'text-delta':
          if (part.text) {
            partial.text += part.text;
            call.onDelta({ type: 'text', text: part.text });
          }
          break;
        case 'reasoning-delta':
          if (part.text) {
            partial.reasoning += part.text;
            call.onDelta({ type: 'reasoning', text: part.text });
          }
          break;
        case 'finish':
          usage = part.totalUsage;
          finishReason = part.finishReason;
          break;
        case 'abort':
          finishReason = 'aborted';
          break;
        case 'error':
          throw part.error;
        default:
          break;
      }
    }
    if (call.signal.aborted) finishReason = 'aborted';
    else if (state.timedOut) throw new ModelError('timeout', 'The model did not answer in time.');
    return { text: partial.text, reasoning: partial.reasoning, usage: toUsage(usage), finishReason };
  } catch (e) {
    if (call.signal.aborted && !state.timedOut) {
      return { text: partial.text, reasoning: partial.reasoning, usage: toUsage(undefined), finishReason: 'aborted' };
    }
    throw classify(e, partial, state.timedOut);
  } finally {
    if (idle !== undefined) clearTimeout(idle);
    call.signal.removeEventListener('abort', onOuterAbort);
  }
}
