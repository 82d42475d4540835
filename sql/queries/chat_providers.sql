/* @name GetChatProviders */
SELECT * FROM chat_providers ORDER BY provider ASC;

/* @name GetChatProviderByID */
SELECT * FROM chat_providers WHERE id = :id!::uuid;

/* @name GetChatProviderByIDForUpdate */
-- A provider delete takes it right after LockChatModelWrites (see there for the lock order).
SELECT * FROM chat_providers WHERE id = :id!::uuid FOR UPDATE;

/* @name GetChatProviderByTypeForUpdate */
-- Model-config create/update, after LockChatModelWrites: replaces the dropped foreign key and serialises against
-- a provider delete.
SELECT * FROM chat_providers WHERE provider = :provider!::text FOR UPDATE;

/* @name InsertChatProvider */
INSERT INTO chat_providers (id, provider, display_name, api_key, api_key_key_id, base_url, enabled, created_by)
VALUES (
    :id!::uuid,
    :provider!::text,
    :display_name!::text,
    :api_key::text,
    :api_key_key_id::text,
    :base_url!::text,
    :enabled!::boolean,
    :created_by::uuid
)
RETURNING *;

/* @name UpdateChatProvider */
UPDATE chat_providers
SET
    display_name = :display_name!::text,
    api_key = :api_key::text,
    api_key_key_id = :api_key_key_id::text,
    base_url = :base_url!::text,
    enabled = :enabled!::boolean,
    updated_at = now()
WHERE id = :id!::uuid
RETURNING *;

/* @name DeleteChatProviderByID */
DELETE FROM chat_providers WHERE id = :id!::uuid RETURNING id;

/* @name GetChatProvidersSealedWithOtherKey */
-- Key rotation: providers whose API key was sealed by an encryption key other than the current one.
SELECT id, provider, api_key, api_key_key_id
FROM chat_providers
WHERE api_key IS NOT NULL AND api_key_key_id <> :current_key_id!::text
ORDER BY id
LIMIT :limit!::int;

/* @name ResealChatProviderAPIKey */
UPDATE chat_providers
SET api_key = :api_key!::text, api_key_key_id = :api_key_key_id!::text
WHERE id = :id!::uuid AND api_key_key_id = :previous_key_id!::text
RETURNING id;
