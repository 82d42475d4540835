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
SELECT id, hashed_password, (suspended_at IS NOT NULL) AS "suspended!"
FROM users
WHERE lower(email) = lower(:email!::text);

/* @name GetUserCredentialsByID */
SELECT id, hashed_password FROM users WHERE id = :id!::uuid;

/* @name UpdateUserPassword */
UPDATE users SET hashed_password = :hashed_password!::text, updated_at = now() WHERE id = :id!::uuid RETURNING id;

/* @name ListUsers */
SELECT id, email, username, roles, created_at, suspended_at
FROM users
ORDER BY created_at, id
LIMIT :limit!::int OFFSET :offset!::int;

/* @name LockOwners */
-- Serialises changes of roles and suspensions, so "at least one active owner remains" holds under concurrency.
SELECT pg_advisory_xact_lock(hashtext('chatd:owners')::bigint) AS locked;

/* @name CountActiveOwnersExcept */
SELECT count(*)::int AS "count!"
FROM users
WHERE 'owner' = ANY (roles) AND suspended_at IS NULL AND id <> :id!::uuid;

/* @name UpdateUserAdmin */
-- NULL leaves a field as it is; suspending keeps the time of an earlier suspension.
UPDATE users
SET
    roles = COALESCE(:roles::text[], roles),
    suspended_at = CASE
        WHEN :suspended::boolean IS NULL THEN suspended_at
        WHEN :suspended::boolean THEN COALESCE(suspended_at, now())
        ELSE NULL
    END,
    updated_at = now()
WHERE id = :id!::uuid
RETURNING id, email, username, roles, created_at, suspended_at;

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
    u.created_at,
    k.last_used_at,
    (u.suspended_at IS NOT NULL) AS "suspended!",
    -- The user's groups (for chats shared with a group), cached with the key and forgotten with it.
    ARRAY(SELECT m.group_id FROM group_members m WHERE m.user_id = u.id ORDER BY m.group_id) AS "group_ids!"
FROM api_keys k
JOIN users u ON u.id = k.user_id
WHERE k.id = :id!::text;

/* @name DeleteAPIKey */
DELETE FROM api_keys
WHERE id = :id!::text AND user_id = :user_id!::uuid
RETURNING id;

/* @name TouchAPIKey */
-- When a key was last used, at most once an hour per key (its AuthDirectory shard calls this).
UPDATE api_keys
SET last_used_at = now()
WHERE id = :id!::text AND (last_used_at IS NULL OR last_used_at < now() - interval '1 hour');

/* @name ListAPIKeysByUser */
-- API keys only (sessions are not listed); newest first.
SELECT id, name, created_at, expires_at, last_used_at
FROM api_keys
WHERE user_id = :user_id!::uuid AND kind = 'api_key'
ORDER BY created_at DESC, id;

/* @name DeleteOtherSessions */
-- Every session of the user but the one given (NULL: all of them).
DELETE FROM api_keys
WHERE user_id = :user_id!::uuid AND kind = 'session' AND id IS DISTINCT FROM :except_id::text
RETURNING id;

/* @name DeleteAllAPIKeysOfUser */
-- Suspension: every session and API key of the user.
DELETE FROM api_keys WHERE user_id = :user_id!::uuid RETURNING id;
