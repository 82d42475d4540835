-- Users, their sessions and API keys.
CREATE EXTENSION IF NOT EXISTS pgcrypto;

CREATE TABLE users (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    email text NOT NULL,
    username text NOT NULL,
    -- pbkdf2-sha256$<iterations>$<salt b64>$<hash b64>
    hashed_password text NOT NULL,
    roles text[] NOT NULL DEFAULT ARRAY['member']::text[],
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT users_roles_known CHECK (roles <@ ARRAY['owner', 'member']::text[] AND cardinality(roles) > 0)
);

-- Logins are case-insensitive on both.
CREATE UNIQUE INDEX users_email_key ON users (lower(email));
CREATE UNIQUE INDEX users_username_key ON users (lower(username));

CREATE TYPE api_key_kind AS ENUM ('session', 'api_key');

-- Tokens are "<id>-<secret>"; only the SHA-256 of the secret is stored.
CREATE TABLE api_keys (
    id text PRIMARY KEY,
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind api_key_kind NOT NULL,
    name text NOT NULL DEFAULT '',
    hashed_secret text NOT NULL,
    expires_at timestamptz NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX api_keys_user_id_idx ON api_keys (user_id);
CREATE INDEX api_keys_expires_at_idx ON api_keys (expires_at);
