/** The AI SDK provider types a model call works with (specification v4, what every provider package here builds). */
import type { LanguageModel } from 'ai';

/** A provider's model (specification v4, what every provider package here builds). */
export type ProviderModel = Extract<LanguageModel, { specificationVersion: 'v4' }>;
export type CallOptions = Parameters<ProviderModel['doStream']>[0];
export type ProviderPrompt = CallOptions['prompt'];
export type StreamPart = Awaited<ReturnType<ProviderModel['doStream']>>['stream'] extends ReadableStream<infer P> ? P : never;
export type ProviderUsage = Extract<StreamPart, { type: 'finish' }>['usage'];
export type ProviderTool = NonNullable<CallOptions['tools']>[number];
