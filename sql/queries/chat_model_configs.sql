/* @name GetChatModelConfigByID */
-- By id, deleted or not: history keeps pointing at soft-deleted configs and must still resolve them.
SELECT * FROM chat_model_configs WHERE id = :id!::uuid;

/* @name GetChatModelConfigByIDForUpdate */
SELECT * FROM chat_model_configs WHERE id = :id!::uuid AND deleted = FALSE FOR UPDATE;

/* @name GetChatModelConfigs */
SELECT *
FROM chat_model_configs
WHERE deleted = FALSE
ORDER BY provider ASC, model ASC, updated_at DESC, id DESC;

/* @name GetEnabledChatModels */
-- What users may pick: live, enabled configs whose provider exists and is enabled.
SELECT cmc.id, cmc.provider, cmc.model, cmc.display_name, cmc.is_default, cmc.context_limit, cmc.pricing
FROM chat_model_configs cmc
JOIN chat_providers cp ON cp.provider = cmc.provider
WHERE cmc.deleted = FALSE AND cmc.enabled = TRUE AND cp.enabled = TRUE
ORDER BY cmc.provider ASC, cmc.model ASC, cmc.updated_at DESC, cmc.id DESC;

/* @name ResolveChatModel */
-- The config a new turn uses: the requested one when it is live, enabled and its provider enabled,
-- otherwise the default under the same conditions. Config and provider in one round trip.
SELECT
    cmc.id,
    cmc.provider,
    cmc.model,
    cmc.display_name,
    cmc.context_limit,
    cmc.compression_threshold,
    cmc.options,
    cmc.pricing,
    cmc.is_default,
    cp.id AS provider_id,
    cp.base_url,
    cp.api_key,
    cp.api_key_key_id,
    (cmc.id = :requested_id::uuid) AS "is_requested!",
    -- The deployment's debug_runs and title_model settings ride along (cached with the resolution): a turn, and the
    -- title job after a chat's first answer, read them with no statement of their own.
    (SELECT value FROM site_configs WHERE key = 'debug_runs') AS debug_runs,
    (SELECT value FROM site_configs WHERE key = 'title_model') AS title_model
FROM chat_model_configs cmc
JOIN chat_providers cp ON cp.provider = cmc.provider
WHERE cmc.deleted = FALSE
    AND cmc.enabled = TRUE
    AND cp.enabled = TRUE
    AND (cmc.id = :requested_id::uuid OR (cmc.is_default AND :allow_default!::boolean))
ORDER BY (cmc.id = :requested_id::uuid) IS TRUE DESC
LIMIT 1;

/* @name LockChatModelWrites */
-- Taken FIRST by every transaction that writes model configs (create, update, delete) or deletes a provider.
-- One lock order everywhere, this lock, then the provider row, then config rows, so concurrent admin writes
-- queue instead of deadlocking (40P01); it also serialises every change of the live default (set, unset,
-- promote), so the partial unique index never races. The key is the one the default lock always used.
SELECT pg_advisory_xact_lock(hashtext('chatd:chat-model-default')::bigint) AS locked;

/* @name InsertChatModelConfig */
INSERT INTO chat_model_configs (
    provider, model, display_name, enabled, is_default, context_limit, compression_threshold, options, pricing,
    created_by, updated_by
) VALUES (
    :provider!::text,
    :model!::text,
    :display_name!::text,
    :enabled!::boolean,
    :is_default!::boolean,
    :context_limit!::int,
    :compression_threshold!::int,
    :options!::jsonb,
    :pricing::jsonb,
    :created_by::uuid,
    :created_by::uuid
)
RETURNING *;

/* @name UpdateChatModelConfig */
UPDATE chat_model_configs
SET
    provider = :provider!::text,
    model = :model!::text,
    display_name = :display_name!::text,
    enabled = :enabled!::boolean,
    is_default = :is_default!::boolean,
    context_limit = :context_limit!::int,
    compression_threshold = :compression_threshold!::int,
    options = :options!::jsonb,
    pricing = :pricing::jsonb,
    updated_by = :updated_by::uuid,
    updated_at = now()
WHERE id = :id!::uuid AND deleted = FALSE
RETURNING *;

/* @name UnsetDefaultChatModelConfigs */
UPDATE chat_model_configs
SET is_default = FALSE, updated_at = now()
WHERE is_default = TRUE AND deleted = FALSE AND id IS DISTINCT FROM :except_id::uuid;

/* @name SoftDeleteChatModelConfigByID */
-- RETURNING sees the new row; the self-join reports whether it was the default before.
UPDATE chat_model_configs AS cmc
SET deleted = TRUE, deleted_at = now(), is_default = FALSE, updated_at = now()
FROM chat_model_configs AS before
WHERE before.id = cmc.id AND cmc.id = :id!::uuid AND cmc.deleted = FALSE
RETURNING cmc.id, before.is_default AS "was_default!";

/* @name SoftDeleteChatModelConfigsByProvider */
-- Runs while the provider row is locked. RETURNING reports the pre-update is_default through a self-join,
-- so the caller knows whether the default was among them.
UPDATE chat_model_configs AS cmc
SET deleted = TRUE, deleted_at = now(), is_default = FALSE, updated_at = now()
FROM chat_model_configs AS before
WHERE before.id = cmc.id AND cmc.provider = :provider!::text AND cmc.deleted = FALSE
RETURNING cmc.id, before.is_default AS "was_default!";

/* @name PromoteDefaultChatModelConfig */
-- Makes the first live config (provider ASC, model ASC, updated_at DESC, id DESC) the default, unless a live
-- default already exists. Returns nothing when nothing was promoted.
UPDATE chat_model_configs
SET is_default = TRUE, updated_at = now()
WHERE id = (
        SELECT id FROM chat_model_configs
        WHERE deleted = FALSE
        ORDER BY provider ASC, model ASC, updated_at DESC, id DESC
        LIMIT 1
    )
    AND NOT EXISTS (SELECT 1 FROM chat_model_configs WHERE is_default AND deleted = FALSE)
RETURNING id;
