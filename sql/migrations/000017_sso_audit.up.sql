-- Single sign-on (OpenID Connect) and the audit log.
--
-- The deployment's one OpenID provider: a single row. The client secret is sealed like provider keys (keyring.ts,
-- bound to 'oidc_config:client_secret'); the API never returns it.
CREATE TABLE oidc_config (
    id boolean PRIMARY KEY DEFAULT true CHECK (id),
    enabled boolean NOT NULL DEFAULT false,
    display_name text NOT NULL,
    issuer text NOT NULL,
    client_id text NOT NULL,
    client_secret text,
    client_secret_key_id text,
    scopes text[] NOT NULL DEFAULT ARRAY['openid', 'email', 'profile'],
    email_domains text[] NOT NULL DEFAULT '{}',
    groups_claim text,
    group_mapping jsonb NOT NULL DEFAULT '{}',
    auto_create_users boolean NOT NULL DEFAULT false,
    link_by_email boolean NOT NULL DEFAULT false,
    require_sso_for_members boolean NOT NULL DEFAULT false,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Who a provider's subject is here: found by (issuer, sub), never by email.
CREATE TABLE oidc_identities (
    issuer text NOT NULL,
    subject text NOT NULL,
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    last_login_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (issuer, subject)
);
CREATE INDEX oidc_identities_user ON oidc_identities (user_id);

-- Sign-ins under way: state (its hash is the key), nonce and PKCE verifier, kept server-side, taken once (DELETE ...
-- RETURNING) and valid 10 minutes. browser_hash binds the flow to the browser that started it (an HttpOnly cookie).
CREATE TABLE oidc_flows (
    state_hash text PRIMARY KEY,
    browser_hash text NOT NULL,
    nonce text NOT NULL,
    code_verifier text NOT NULL,
    redirect text NOT NULL,
    expires_at timestamptz NOT NULL
);
CREATE INDEX oidc_flows_expires ON oidc_flows (expires_at);

-- Every security and admin event, written in the same transaction as its change.
CREATE TABLE audit_events (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at timestamptz NOT NULL DEFAULT now(),
    actor_id uuid,
    actor_email text,
    action text NOT NULL,
    target_type text,
    target_id text,
    ip text,
    detail jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_events_at ON audit_events (at DESC, id DESC);
CREATE INDEX audit_events_actor ON audit_events (actor_id, at DESC, id DESC);
CREATE INDEX audit_events_action ON audit_events (action, at DESC, id DESC);
