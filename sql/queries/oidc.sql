/* @name GetOidcConfig */
SELECT enabled, display_name, issuer, client_id, client_secret, client_secret_key_id, scopes, email_domains,
    groups_claim, group_mapping, auto_create_users, link_by_email, require_sso_for_members
FROM oidc_config
WHERE id;

/* @name UpsertOidcConfig */
-- client_secret null with keep_secret: the stored secret stays.
INSERT INTO oidc_config (id, enabled, display_name, issuer, client_id, client_secret, client_secret_key_id, scopes,
    email_domains, groups_claim, group_mapping, auto_create_users, link_by_email, require_sso_for_members)
VALUES (true, :enabled!::boolean, :display_name!::text, :issuer!::text, :client_id!::text, :client_secret::text,
    :client_secret_key_id::text, :scopes!::text[], :email_domains!::text[], :groups_claim::text,
    :group_mapping!::jsonb, :auto_create_users!::boolean, :link_by_email!::boolean, :require_sso_for_members!::boolean)
ON CONFLICT (id) DO UPDATE SET
    enabled = EXCLUDED.enabled,
    display_name = EXCLUDED.display_name,
    issuer = EXCLUDED.issuer,
    client_id = EXCLUDED.client_id,
    client_secret = CASE WHEN :keep_secret!::boolean THEN oidc_config.client_secret ELSE EXCLUDED.client_secret END,
    client_secret_key_id = CASE WHEN :keep_secret!::boolean THEN oidc_config.client_secret_key_id ELSE EXCLUDED.client_secret_key_id END,
    scopes = EXCLUDED.scopes,
    email_domains = EXCLUDED.email_domains,
    groups_claim = EXCLUDED.groups_claim,
    group_mapping = EXCLUDED.group_mapping,
    auto_create_users = EXCLUDED.auto_create_users,
    link_by_email = EXCLUDED.link_by_email,
    require_sso_for_members = EXCLUDED.require_sso_for_members,
    updated_at = now()
RETURNING (client_secret IS NOT NULL) AS "has_client_secret!";

/* @name InsertOidcFlow */
INSERT INTO oidc_flows (state_hash, browser_hash, nonce, code_verifier, redirect, expires_at)
VALUES (:state_hash!::text, :browser_hash!::text, :nonce!::text, :code_verifier!::text, :redirect!::text,
    now() + make_interval(secs => :ttl_seconds!::int));

/* @name TakeOidcFlow */
-- Single use: the row goes whether or not it is still valid; an expired one answers nothing.
WITH gone AS (DELETE FROM oidc_flows WHERE state_hash = :state_hash!::text RETURNING *)
SELECT browser_hash, nonce, code_verifier, redirect FROM gone WHERE expires_at > now();

/* @name PurgeOidcFlows */
DELETE FROM oidc_flows WHERE expires_at < now() - interval '1 hour';

/* @name GetOidcIdentity */
SELECT i.user_id, (u.suspended_at IS NOT NULL) AS "suspended!", u.email, u.roles
FROM oidc_identities i JOIN users u ON u.id = i.user_id
WHERE i.issuer = :issuer!::text AND i.subject = :subject!::text;

/* @name InsertOidcIdentity */
INSERT INTO oidc_identities (issuer, subject, user_id)
VALUES (:issuer!::text, :subject!::text, :user_id!::uuid);

/* @name TouchOidcIdentity */
UPDATE oidc_identities SET last_login_at = now() WHERE issuer = :issuer!::text AND subject = :subject!::text;

/* @name GetUserForLink */
SELECT id, (suspended_at IS NOT NULL) AS "suspended!", roles,
    EXISTS (SELECT 1 FROM oidc_identities i WHERE i.user_id = users.id AND i.issuer = :issuer!::text) AS "linked!"
FROM users WHERE lower(email) = lower(:email!::text);

/* @name UserHasSsoIdentity */
SELECT EXISTS (SELECT 1 FROM oidc_identities WHERE user_id = :user_id!::uuid) AS "linked!";

/* @name SetUserGroups */
-- Group sync: the user's memberships among the mapped groups become exactly :group_ids (unmapped groups untouched).
-- Answers how many rows were added and removed.
WITH removed AS (
    DELETE FROM group_members
    WHERE user_id = :user_id!::uuid AND group_id = ANY(:mapped_ids!::uuid[]) AND NOT (group_id = ANY(:group_ids!::uuid[]))
    RETURNING group_id
), added AS (
    INSERT INTO group_members (group_id, user_id)
    SELECT g.id, :user_id!::uuid FROM groups g WHERE g.id = ANY(:group_ids!::uuid[])
    ON CONFLICT DO NOTHING
    RETURNING group_id
)
SELECT ARRAY(SELECT group_id::text FROM added) AS "added!", ARRAY(SELECT group_id::text FROM removed) AS "removed!";

/* @name CountExistingGroups */
SELECT count(*)::int AS "n!" FROM groups WHERE id = ANY(:ids!::uuid[]);

/* @name SsoRequiredForUser */
-- Password login is refused for members when the owner requires single sign-on (never for owners).
SELECT EXISTS (
    SELECT 1 FROM oidc_config c, users u
    WHERE c.id AND c.enabled AND c.require_sso_for_members AND u.id = :user_id!::uuid AND NOT ('owner' = ANY(u.roles))
) AS "required!";
