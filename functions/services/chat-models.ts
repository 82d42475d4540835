/**
 * Providers and model configs: admin management with soft delete and default promotion, and the one
 * function that resolves the model a new turn uses (with a per-isolate cache).
 */
import { z } from 'zod';
import { Timestamp } from '../core/shapes/chat';
import {
  ModelConfig,
  ModelOptions,
  Provider,
  UsableModel,
  type ModelConfigPatch,
  type NewModelConfig,
  type NewProvider,
  type ProviderPatch,
  type ProviderType,
} from '../core/shapes/models';
import { noEvent, type Recorder } from './audit';
import type { Db, Queryable, Tx } from '../core/db';
import { pgErrorCode } from '../core/db';
import { badRequest, conflict, notFound } from '../core/errors';
import type { KeyRing } from '../core/keyring';
import {
  deleteChatProviderById,
  getChatProviderByIdForUpdate,
  getChatProviderByTypeForUpdate,
  getChatProviders,
  getChatProvidersSealedWithOtherKey,
  insertChatProvider,
  resealChatProviderApiKey,
  updateChatProvider,
} from '../../sql/generated/chat_providers.queries';
import {
  getChatModelConfigById,
  getChatModelConfigByIdForUpdate,
  getChatModelConfigs,
  getEnabledChatModels,
  insertChatModelConfig,
  lockChatModelWrites,
  promoteDefaultChatModelConfig,
  softDeleteChatModelConfigById,
  softDeleteChatModelConfigsByProvider,
  unsetDefaultChatModelConfigs,
  updateChatModelConfig,
} from '../../sql/generated/chat_model_configs.queries';
import { Pricing } from '../core/usage-cost';
import { invalidateModelCache, sealBinding } from '../core/model-resolve';
import { resealAll } from './reseal';


const DEFAULT_DISPLAY_NAMES: Record<ProviderType, string> = {
  openai: 'OpenAI',
  anthropic: 'Anthropic',
  google: 'Google',
  'openai-compat': 'OpenAI-compatible',
  openrouter: 'OpenRouter',
};

export { DEFAULT_MAX_STEPS, ModelConfig, ModelOptions, PROVIDER_TYPES, Provider, ProviderType, UsableModel } from '../core/shapes/models';

/** A provider row as the API shows it: the key is reduced to `has_api_key`. */
const ProviderRow = Provider.omit({ has_api_key: true })
  .extend({ api_key: z.string().nullable(), created_at: Timestamp, updated_at: Timestamp })
  .transform(({ api_key, ...p }): Provider => ({ ...p, has_api_key: api_key !== null }));

function toProvider(row: unknown): Provider {
  return ProviderRow.parse(row);
}

const ConfigRow = ModelConfig.extend({ options: ModelOptions.catch({}), created_at: Timestamp, updated_at: Timestamp });

function toModelConfig(row: unknown): ModelConfig {
  return ConfigRow.parse(row);
}

// ---------------------------------------------------------------- providers

export async function listProviders(db: Queryable): Promise<Provider[]> {
  return (await getChatProviders.run(undefined, db)).map(toProvider);
}

export async function createProvider(db: Db, ring: KeyRing, actorId: string, input: NewProvider, record: Recorder<Provider> = noEvent): Promise<Provider> {
  const id = crypto.randomUUID();
  const sealed = input.api_key ? await ring.seal(input.api_key, sealBinding(id)) : null;
  try {
    const provider = await db.inTx(async (tx) => {
      const [row] = await insertChatProvider.run(
      {
        id,
        provider: input.provider,
        display_name: input.display_name ?? DEFAULT_DISPLAY_NAMES[input.provider],
        api_key: sealed?.ciphertext ?? null,
        api_key_key_id: sealed?.keyId ?? null,
        base_url: input.base_url ?? '',
        enabled: input.enabled ?? true,
        created_by: actorId,
      },
      tx,
      );
      const created = toProvider(row);
      await record(tx, created);
      return created;
    });
    invalidateModelCache();
    return provider;
  } catch (e) {
    if (pgErrorCode(e) === '23505') throw conflict('Chat provider already exists.');
    throw e;
  }
}

export async function updateProvider(db: Db, ring: KeyRing, id: string, patch: ProviderPatch, record: Recorder<Provider> = noEvent): Promise<Provider> {
  const row = await db.inTx(async (tx) => {
    const [current] = await getChatProviderByIdForUpdate.run({ id }, tx);
    if (!current) throw notFound();
    let apiKey = current.api_key;
    let keyId = current.api_key_key_id;
    if (patch.api_key === null || patch.api_key === '') {
      apiKey = null;
      keyId = null;
    } else if (patch.api_key !== undefined) {
      const sealed = await ring.seal(patch.api_key, sealBinding(id));
      apiKey = sealed.ciphertext;
      keyId = sealed.keyId;
    }
    const [updated] = await updateChatProvider.run(
      {
        id,
        display_name: patch.display_name ?? current.display_name,
        api_key: apiKey,
        api_key_key_id: keyId,
        base_url: patch.base_url ?? current.base_url,
        enabled: patch.enabled ?? current.enabled,
      },
      tx,
    );
    if (!updated) throw notFound();
    const provider = toProvider(updated);
    await record(tx, provider);
    return provider;
  });
  invalidateModelCache();
  return row;
}

/**
 * Deletes a provider in one transaction: lock it, soft-delete its model configs, promote a new default when
 * the default was among them, hard-delete the provider. History keeps pointing at the soft-deleted configs.
 * Lock order (as in every model-config write): LockChatModelWrites, the provider row, config rows.
 */
export async function deleteProvider(db: Db, id: string, record: Recorder<{ softDeleted: number; promoted: string | null }> = noEvent): Promise<{ softDeleted: number; promoted: string | null }> {
  const out = await db.inTx(async (tx) => {
    await lockChatModelWrites.run(undefined, tx);
    const [provider] = await getChatProviderByIdForUpdate.run({ id }, tx);
    if (!provider) throw notFound();
    const gone = await softDeleteChatModelConfigsByProvider.run({ provider: provider.provider }, tx);
    const promoted = gone.some((g) => g.was_default) ? await promoteDefault(tx) : null;
    await deleteChatProviderById.run({ id }, tx);
    const result = { softDeleted: gone.length, promoted };
    await record(tx, result);
    return result;
  });
  invalidateModelCache();
  return out;
}


/** Re-encrypts provider keys sealed by an older key with the current one, in bounded batches (the cron's rotation). */
export async function resealProviderKeys(db: Db, ring: KeyRing, batch = 100): Promise<number> {
  return await resealAll(
    ring,
    {
      what: 'provider key',
      stale: (current_key_id, limit) => getChatProvidersSealedWithOtherKey.run({ current_key_id, limit }, db),
      id: (r) => r.id,
      sealed: (r) => (r.api_key !== null && r.api_key_key_id !== null ? { ciphertext: r.api_key, keyId: r.api_key_key_id } : null),
      binding: (r) => sealBinding(r.id),
      store: async (r, v, previous_key_id) =>
        (await resealChatProviderApiKey.run({ id: r.id, api_key: v.ciphertext, api_key_key_id: v.keyId, previous_key_id }, db)).length,
    },
    batch,
  );
}

// ---------------------------------------------------------------- model configs

export async function listModelConfigs(db: Queryable): Promise<ModelConfig[]> {
  return (await getChatModelConfigs.run(undefined, db)).map(toModelConfig);
}

export async function listUsableModels(db: Queryable): Promise<UsableModel[]> {
  return (await getEnabledChatModels.run(undefined, db)).map((r) => UsableModel.parse(r));
}

/** Prices as the statements take them: JSON text, or SQL NULL. */
const pricingParam = (p: Pricing | null | undefined): string | null => (p ? JSON.stringify(p) : null);

const PROVIDER_NOT_CONFIGURED = 'Chat provider is not configured.';

/**
 * Creates a config; the provider is looked up FOR UPDATE (this serialises against a provider delete).
 * Lock order: LockChatModelWrites, the provider row, config rows.
 */
export async function createModelConfig(db: Db, actorId: string, input: NewModelConfig, record: Recorder<ModelConfig> = noEvent): Promise<ModelConfig> {
  const row = await db.inTx(async (tx) => {
    await lockChatModelWrites.run(undefined, tx);
    const [provider] = await getChatProviderByTypeForUpdate.run({ provider: input.provider }, tx);
    if (!provider) throw badRequest(PROVIDER_NOT_CONFIGURED);
    const isDefault = input.is_default ?? false;
    if (isDefault) await unsetDefaultChatModelConfigs.run({ except_id: null }, tx);
    const [inserted] = await insertChatModelConfig.run(
      {
        provider: input.provider,
        model: input.model,
        display_name: input.display_name ?? input.model,
        enabled: input.enabled ?? true,
        is_default: isDefault,
        context_limit: input.context_limit,
        compression_threshold: input.compression_threshold ?? 70,
        options: JSON.stringify(input.options ?? {}),
        pricing: pricingParam(input.pricing),
        created_by: actorId,
      },
      tx,
    );
    const created = toModelConfig(inserted);
    await record(tx, created);
    return created;
  });
  invalidateModelCache();
  return row;
}

/**
 * Updates a live config. A row that is gone, or vanishes mid-transaction, is a 404; an unknown provider a 400.
 * Other races (for example on the default) stay internal errors rather than being misreported as "gone".
 * Lock order: LockChatModelWrites, the provider row, then the config row. Its provider is read before the row
 * is locked; under the first lock no other API write can change it in between.
 */
export async function updateModelConfig(db: Db, actorId: string, id: string, patch: ModelConfigPatch, record: Recorder<ModelConfig> = noEvent): Promise<ModelConfig> {
  const row = await db.inTx(async (tx) => {
    await lockChatModelWrites.run(undefined, tx);
    const [before] = await getChatModelConfigById.run({ id }, tx);
    if (!before || before.deleted) throw notFound();
    const providerType = patch.provider ?? before.provider;
    const [provider] = await getChatProviderByTypeForUpdate.run({ provider: providerType }, tx);
    if (!provider) throw badRequest(PROVIDER_NOT_CONFIGURED);
    const [current] = await getChatModelConfigByIdForUpdate.run({ id }, tx);
    if (!current) throw notFound();
    const isDefault = patch.is_default ?? current.is_default;
    if (isDefault && !current.is_default) await unsetDefaultChatModelConfigs.run({ except_id: id }, tx);
    const [updated] = await updateChatModelConfig.run(
      {
        id,
        provider: providerType,
        model: patch.model ?? current.model,
        display_name: patch.display_name ?? current.display_name,
        enabled: patch.enabled ?? current.enabled,
        is_default: isDefault,
        context_limit: patch.context_limit ?? current.context_limit,
        compression_threshold: patch.compression_threshold ?? current.compression_threshold,
        options: JSON.stringify(patch.options ?? ModelOptions.catch({}).parse(current.options)),
        pricing: patch.pricing === undefined ? pricingParam(Pricing.nullable().parse(current.pricing)) : pricingParam(patch.pricing),
        updated_by: actorId,
      },
      tx,
    );
    if (!updated) throw notFound();
    const config = toModelConfig(updated);
    await record(tx, config);
    return config;
  });
  invalidateModelCache();
  return row;
}

/** Soft-deletes a config, promoting another default when it was the default. Lock order: LockChatModelWrites, the row. */
export async function deleteModelConfig(db: Db, id: string, record: Recorder<{ promoted: string | null }> = noEvent): Promise<{ promoted: string | null }> {
  const out = await db.inTx(async (tx) => {
    await lockChatModelWrites.run(undefined, tx);
    const [gone] = await softDeleteChatModelConfigById.run({ id }, tx);
    if (!gone) throw notFound();
    const result = { promoted: gone.was_default ? await promoteDefault(tx) : null };
    await record(tx, result);
    return result;
  });
  invalidateModelCache();
  return out;
}

async function promoteDefault(tx: Tx): Promise<string | null> {
  const [p] = await promoteDefaultChatModelConfig.run(undefined, tx);
  return p?.id ?? null;
}
