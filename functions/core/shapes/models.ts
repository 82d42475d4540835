/**
 * LLM providers and model configs, each shape written once (see `chat.ts` for the rule): routes, the OpenAPI
 * document, the SDK and the row parsing in `functions/services/chat-models.ts` derive from these.
 */
import { z } from '@hono/zod-openapi';
import { Pricing } from './usage';

export const PROVIDER_TYPES = ['openai', 'anthropic', 'google', 'openai-compat', 'openrouter'] as const;
export const ProviderType = z.enum(PROVIDER_TYPES).openapi('ProviderType');
export type ProviderType = z.infer<typeof ProviderType>;

export const ModelOptions = z
  .object({
    max_output_tokens: z.number().int().positive().optional(),
    temperature: z.number().min(0).max(2).optional(),
    top_p: z.number().min(0).max(1).optional(),
    top_k: z.number().int().positive().optional(),
    presence_penalty: z.number().min(-2).max(2).optional(),
    frequency_penalty: z.number().min(-2).max(2).optional(),
    provider_options: z.record(z.string(), z.record(z.string(), z.unknown())).optional(),
    /** The most model calls a turn makes with tools (a tool step each) before it stops with a note; default 8. */
    max_steps: z.number().int().min(1).max(50).optional().openapi({ description: 'Model calls with tools per turn; default 8' }),
    /** The built-in tool search_chats (the chat owner's chats), offered with this approval mode; absent: not offered. */
    search_chats: z
      .enum(['auto', 'ask', 'deny'])
      .optional()
      .openapi({ description: "Offer the built-in tool search_chats (searches the chat owner's chats) with this approval mode; absent: not offered" }),
  })
  .strict()
  .openapi('ModelOptions');
/** A turn's model calls with tools when the model config does not say (`options.max_steps`). */
export const DEFAULT_MAX_STEPS = 8;
export type ModelOptions = z.infer<typeof ModelOptions>;

/** A provider as the API shows it: the key is reduced to `has_api_key`. */
export const Provider = z
  .object({
    id: z.uuid(),
    provider: z.string(),
    display_name: z.string(),
    enabled: z.boolean(),
    base_url: z.string(),
    has_api_key: z.boolean(),
    created_at: z.iso.datetime(),
    updated_at: z.iso.datetime(),
  })
  .openapi('ChatProvider');
export type Provider = z.infer<typeof Provider>;

export const ModelConfig = z
  .object({
    id: z.uuid(),
    provider: z.string(),
    model: z.string(),
    display_name: z.string(),
    enabled: z.boolean(),
    is_default: z.boolean(),
    context_limit: z.number().int(),
    compression_threshold: z.number().int(),
    options: ModelOptions,
    /** Prices per million tokens; null: unpriced (counted in tokens only). */
    pricing: Pricing.nullable(),
    created_at: z.iso.datetime(),
    updated_at: z.iso.datetime(),
  })
  .openapi('ChatModelConfig');
export type ModelConfig = z.infer<typeof ModelConfig>;

/** What any user sees of a model they may chat with. */
export const UsableModel = ModelConfig.pick({
  id: true,
  provider: true,
  model: true,
  display_name: true,
  is_default: true,
  context_limit: true,
  pricing: true,
}).openapi('ChatModel');
export type UsableModel = z.infer<typeof UsableModel>;

// ---------------------------------------------------------------- inputs

const BaseUrl = z
  .url({ protocol: /^https?$/, message: 'must be an http(s) URL' })
  .max(2048)
  .or(z.literal(''));
const ApiKey = z.string().max(4096);

export const NewProvider = z
  .object({
    provider: ProviderType,
    display_name: z.string().trim().max(128).optional(),
    api_key: ApiKey.optional(),
    base_url: BaseUrl.optional(),
    enabled: z.boolean().optional(),
  })
  .strict()
  .openapi('NewChatProvider');
export type NewProvider = z.infer<typeof NewProvider>;

/** `api_key: null` clears the key. */
export const ProviderPatch = NewProvider.omit({ provider: true })
  .extend({ api_key: ApiKey.nullable().optional() })
  .strict()
  .openapi('ChatProviderPatch');
export type ProviderPatch = z.infer<typeof ProviderPatch>;

export const NewModelConfig = z
  .object({
    provider: z.string().min(1).max(64),
    model: z.string().trim().min(1).max(256),
    display_name: z.string().trim().max(256).optional(),
    enabled: z.boolean().optional(),
    is_default: z.boolean().optional(),
    context_limit: z.number().int().positive({ message: 'must be greater than 0' }).max(100_000_000),
    compression_threshold: z.number().int().min(0).max(100).optional(),
    options: ModelOptions.optional(),
    /** null clears the prices; absent keeps them (on a change) or leaves the config unpriced (on creation). */
    pricing: Pricing.nullable().optional(),
  })
  .strict()
  .openapi('NewChatModelConfig');
export type NewModelConfig = z.infer<typeof NewModelConfig>;

export const ModelConfigPatch = NewModelConfig.partial().strict().openapi('ChatModelConfigPatch');
export type ModelConfigPatch = z.infer<typeof ModelConfigPatch>;
