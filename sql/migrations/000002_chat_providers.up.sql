-- LLM providers and the model configs admins build on them.

CREATE TABLE chat_providers (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    -- The provider type (openai, anthropic, ...); at most one row per type.
    provider text NOT NULL,
    display_name text NOT NULL DEFAULT '',
    -- AES-GCM ciphertext (base64 of iv || ciphertext) of the API key, and the digest of the encryption key
    -- that sealed it, so keys can be rotated. Both NULL when no key is set.
    api_key text,
    api_key_key_id text,
    base_url text NOT NULL DEFAULT '',
    enabled boolean NOT NULL DEFAULT true,
    created_by uuid REFERENCES users (id) ON DELETE SET NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT chat_providers_provider_key UNIQUE (provider),
    CONSTRAINT chat_providers_api_key_sealed CHECK ((api_key IS NULL) = (api_key_key_id IS NULL))
);

CREATE TABLE chat_model_configs (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    -- Deliberately no foreign key to chat_providers: deleting a provider soft-deletes its configs, which
    -- historical chats and messages keep pointing at.
    provider text NOT NULL,
    model text NOT NULL,
    display_name text NOT NULL DEFAULT '',
    enabled boolean NOT NULL DEFAULT true,
    is_default boolean NOT NULL DEFAULT false,
    deleted boolean NOT NULL DEFAULT false,
    deleted_at timestamptz,
    context_limit integer NOT NULL,
    compression_threshold integer NOT NULL DEFAULT 70,
    options jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_by uuid REFERENCES users (id) ON DELETE SET NULL,
    updated_by uuid REFERENCES users (id) ON DELETE SET NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT chat_model_configs_context_limit_positive CHECK (context_limit > 0),
    CONSTRAINT chat_model_configs_compression_threshold_range CHECK (compression_threshold BETWEEN 0 AND 100),
    CONSTRAINT chat_model_configs_deleted_at CHECK (deleted = (deleted_at IS NOT NULL)),
    CONSTRAINT chat_model_configs_options_object CHECK (jsonb_typeof(options) = 'object')
);

-- At most one live default.
CREATE UNIQUE INDEX chat_model_configs_one_default ON chat_model_configs ((true)) WHERE is_default AND NOT deleted;
-- Live lists and provider deletes.
CREATE INDEX chat_model_configs_live_order ON chat_model_configs (provider, model, updated_at DESC, id DESC) WHERE NOT deleted;
