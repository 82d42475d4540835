/**
 * The lean path of an OpenAI-compatible chat call: the request the AI SDK's `@ai-sdk/openai-compatible` would send,
 * and its server-sent events read in one pass (one JSON.parse per event, no per-chunk schema validation, one stream
 * hop instead of four). It serves only the calls whose request and answer it knows to write and read exactly like the
 * SDK: a prompt of system, user and assistant text, no tools, no provider options, no response format. Every other
 * call goes to the SDK's model unchanged. The answer is read by lean-sse.ts; test/worker/lean-compat.test.ts holds both
 * paths to the same request bodies and the same outputs.
 */
import { createJsonErrorResponseHandler, postJsonToApi } from '@ai-sdk/provider-utils';
import { APICallError } from 'ai';
import { z } from 'zod';
import { leanEvents } from './lean-sse';
import type { CallOptions, ProviderModel, StreamPart } from './provider-types';

/** The provider name the SDK's model is built with (its metadata key). */
const PROVIDER = 'openai-compat';

type Body = Record<string, unknown>;

/** The request body the SDK would post for `o`, or null when the call is not one the lean path serves. */
export function leanBody(modelId: string, o: CallOptions): Body | null {
  if ((o.tools?.length ?? 0) > 0 || o.toolChoice || o.responseFormat || o.stopSequences || o.seed !== undefined || o.reasoning !== undefined) return null;
  if (o.providerOptions && Object.keys(o.providerOptions).length > 0) return null;
  if (o.includeRawChunks || (o.headers && Object.keys(o.headers).length > 0)) return null;
  const messages: Body[] = [];
  for (const m of o.prompt) {
    if (m.providerOptions) return null;
    if (m.role === 'system') messages.push({ role: 'system', content: m.content });
    else if (m.role === 'user') {
      const [only, ...more] = m.content;
      if (!only || more.length > 0 || only.type !== 'text' || only.providerOptions) return null;
      messages.push({ role: 'user', content: only.text });
    } else if (m.role === 'assistant') {
      let text = '';
      for (const p of m.content) {
        if (p.type !== 'text' || p.providerOptions) return null;
        text += p.text;
      }
      messages.push({ role: 'assistant', content: text });
    } else return null;
  }
  return {
    model: modelId,
    max_tokens: o.maxOutputTokens,
    temperature: o.temperature,
    top_p: o.topP,
    frequency_penalty: o.frequencyPenalty,
    presence_penalty: o.presencePenalty,
    messages,
    stream: true,
    stream_options: { include_usage: true },
  };
}

export interface LeanConfig {
  /** …/v1, without a trailing slash */
  baseURL: string;
  apiKey: string | undefined;
  /** The SDK's model: it serves every call the lean path does not. */
  fallback: ProviderModel;
  fetch?: typeof fetch;
}

/** A model that streams through the lean path when it can, and through the SDK's model otherwise. */
export function leanCompatModel(c: LeanConfig): ProviderModel {
  const sdk = c.fallback;
  return {
    specificationVersion: sdk.specificationVersion,
    provider: sdk.provider,
    modelId: sdk.modelId,
    supportedUrls: sdk.supportedUrls,
    doGenerate: (o) => sdk.doGenerate(o),
    doStream: async (o) => {
      const body = leanBody(sdk.modelId, o);
      if (!body) return await sdk.doStream(o);
      return { stream: await post(c, body, o.abortSignal), request: { body } };
    },
  };
}

/** The SDK's default error body of an OpenAI-compatible provider, and its message. */
const failedResponseHandler = createJsonErrorResponseHandler({
  errorSchema: z.object({
    error: z.object({ message: z.string(), type: z.string().nullish(), param: z.unknown().nullish(), code: z.union([z.string(), z.number()]).nullish() }),
  }),
  errorToMessage: (data) => data.error.message,
});

/**
 * Posts the request through the SDK's own `postJsonToApi`, so headers, HTTP errors (an APICallError, retryable or
 * not), unreachable hosts and aborts behave exactly as on the SDK's path; only the answer's body is read here.
 */
async function post(c: LeanConfig, body: Body, signal: AbortSignal | undefined): Promise<ReadableStream<StreamPart>> {
  const { value } = await postJsonToApi({
    url: `${c.baseURL.replace(/\/+$/, '')}/chat/completions`,
    headers: c.apiKey ? { Authorization: `Bearer ${c.apiKey}` } : {},
    body,
    failedResponseHandler,
    successfulResponseHandler: ({ url, requestBodyValues, response }) => {
      const stream: ReadableStream<Uint8Array> | null = response.body;
      if (!stream) throw new APICallError({ message: 'The response has no body.', url, requestBodyValues, statusCode: response.status });
      return Promise.resolve({ value: leanEvents(stream, PROVIDER) });
    },
    abortSignal: signal,
    ...(c.fetch ? { fetch: c.fetch } : {}),
  });
  return value;
}
