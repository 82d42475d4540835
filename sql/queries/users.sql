/* @name CountUsers */
SELECT count(*)::int AS "count!" FROM users;

/* @name LockUserBootstrap */
-- Serialises first-user bootstrap: the check "no user exists" and the insert happen under this lock.
SELECT pg_advisory_xact_lock(hashtext('chatd:first-user')::bigint) AS locked;

/* @name InsertUser */
INSERT INTO users (email, username, hashed_password, roles)
VALUES (:email!::text, :username!::text, :hashed_password!::text, :roles!::text[])
RETURNING id, email, username, roles, created_at, updated_at;

/* @name GetUserByID */
SELECT id, email, username, roles, created_at, updated_at
FROM users
WHERE id = :id!::uuid;

/* @name GetUserCredentialsByEmail */
SELECT id, hashed_password
FROM users
WHERE lower(email) = lower(:email!::text);

/* @name InsertAPIKey */
INSERT INTO api_keys (id, user_id, kind, name, hashed_secret, expires_at)
VALUES (:id!::text, :user_id!::uuid, :kind!::api_key_kind, :name!::text, :hashed_secret!::text, :expires_at!::timestamptz)
RETURNING id, expires_at;

/* @name GetAPIKeyWithUser */
-- Authentication: the key and its user in one round trip. Expiry is checked by the caller, so an
-- expired key can be told apart from an unknown one in logs.
SELECT
    k.id AS key_id,
    k.kind AS key_kind,
    k.hashed_secret,
    k.expires_at,
    u.id AS user_id,
    u.email,
    u.username,
    u.roles,
    u.created_at
FROM api_keys k
JOIN users u ON u.id = k.user_id
WHERE k.id = :id!::text;

/* @name DeleteAPIKey */
DELETE FROM api_keys
WHERE id = :id!::text AND user_id = :user_id!::uuid
RETURNING id;
