/**
 * The model a turn runs on: the one function that resolves it (requested config, else the default), with a
 * per-isolate cache. Shared by the Worker (which invalidates the cache on writes) and the chat objects (which resolve).
 */
import { z } from 'zod';
import { ModelOptions } from './shapes/models';
import { Pricing } from './shapes/usage';
import type { Conn, Queryable } from './db';
import { ApiError } from './errors';
import { resolveChatModel } from '../../sql/generated/chat_model_configs.queries';
import { DebugRunsMode } from './shapes/operations';
import { settingFrom, type SettingValue } from './site-config';

export { DEFAULT_MAX_STEPS } from './shapes/models';

export { sealBinding } from './keyring';

export interface ResolvedModel {
  config: {
    id: string;
    provider: string;
    model: string;
    display_name: string;
    context_limit: number;
    compression_threshold: number;
    options: ModelOptions;
    /** The prices this resolution carries: a turn's answers are costed with the prices it started with. */
    pricing: Pricing | null;
  };
  provider: {
    id: string;
    provider: string;
    base_url: string;
    /** Still sealed: only the turn runner opens it. */
    api_key: { ciphertext: string; keyId: string } | null;
  };
  /** False when the requested config was not usable and the default was used instead. */
  requested: boolean;
  /** The deployment's `debug_runs` setting, read with the resolution (cached with it). */
  debugRuns: DebugRunsMode;
  /** The deployment's `title_model` setting (durable-objects/room/titles.ts), read with the resolution too. */
  titleModel: SettingValue<'title_model'>;
}

/** The mode of the stored `debug_runs` setting (JSON text, or null when unset); off when unreadable. */
function debugRunsOf(value: string | null): DebugRunsMode {
  if (value === null) return 'off';
  try {
    const parsed = z.object({ debug_runs: DebugRunsMode }).safeParse(JSON.parse(value));
    return parsed.success ? parsed.data.debug_runs : 'off';
  } catch {
    return 'off';
  }
}

export const NO_DEFAULT_MODEL = 'no default chat model config is available';

/** No usable model: neither the requested config nor a default. */
export class NoModelError extends ApiError {
  constructor(message = NO_DEFAULT_MODEL) {
    super(400, message);
  }
}

const ResolvedRow = z.object({
  id: z.string(),
  provider: z.string(),
  model: z.string(),
  display_name: z.string(),
  context_limit: z.number(),
  compression_threshold: z.number(),
  options: ModelOptions.catch({}),
  pricing: Pricing.nullable(),
  provider_id: z.string(),
  base_url: z.string(),
  api_key: z.string().nullable(),
  api_key_key_id: z.string().nullable(),
  is_requested: z.boolean().nullable(),
  debug_runs: z.string().nullable(),
  title_model: z.string().nullable(),
});

/**
 * The model for a new turn: `requestedId` when it is live, enabled and its provider enabled; otherwise the
 * default (when `fallback`); none → NoModelError(`no default chat model config is available`).
 */
export async function resolveModel(conn: Conn | Queryable, requestedId: string | null, fallback = true): Promise<ResolvedModel> {
  const [row] = await resolveChatModel.run({ requested_id: requestedId, allow_default: fallback || requestedId === null }, conn);
  if (!row) throw new NoModelError();
  const r = ResolvedRow.parse(row);
  return {
    config: {
      id: r.id,
      provider: r.provider,
      model: r.model,
      display_name: r.display_name,
      context_limit: r.context_limit,
      compression_threshold: r.compression_threshold,
      options: r.options,
      pricing: r.pricing,
    },
    provider: {
      id: r.provider_id,
      provider: r.provider,
      base_url: r.base_url,
      api_key: r.api_key !== null && r.api_key_key_id !== null ? { ciphertext: r.api_key, keyId: r.api_key_key_id } : null,
    },
    requested: r.is_requested === true,
    debugRuns: debugRunsOf(r.debug_runs),
    titleModel: settingFrom('title_model', r.title_model),
  };
}

/**
 * Per-isolate cache of resolutions, so a turn does not re-read its provider and model config (the reference
 * system measured ~3 such reads per turn). Writers in this isolate invalidate it at once; other isolates (in
 * production, other Durable Object hosts) see a change within `MODEL_CACHE_TTL_MS`.
 */
export const MODEL_CACHE_TTL_MS = 30_000;
let generation = 0;
const modelCache = new Map<string, { at: number; generation: number; value: ResolvedModel }>();

export function invalidateModelCache(): void {
  generation += 1;
  modelCache.clear();
}

/** `resolveModel` through the cache. */
export async function resolveModelCached(conn: Conn | Queryable, requestedId: string | null, now = Date.now()): Promise<ResolvedModel> {
  const key = requestedId ?? '';
  const hit = modelCache.get(key);
  if (hit && hit.generation === generation && now - hit.at < MODEL_CACHE_TTL_MS) return hit.value;
  const started = generation;
  const value = await resolveModel(conn, requestedId);
  // A write that landed while we were reading must win: do not store a result fetched before it.
  if (started === generation) modelCache.set(key, { at: now, generation, value });
  return value;
}
