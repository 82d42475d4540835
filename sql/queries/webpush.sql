/* @name LockWebpushSubscriber */
-- Serialises one user's subscribes, so the cap below (a count, then an insert) holds under concurrency.
SELECT pg_advisory_xact_lock(hashtext('chatd:webpush:' || :user_id!::text)::bigint) AS locked;

/* @name UpsertWebpushSubscriptionCapped */
-- Upsert on (user_id, endpoint). A new endpoint is added only while the user has fewer than :max others; no row
-- back means the cap was reached. Runs after LockWebpushSubscriber in the same transaction.
INSERT INTO webpush_subscriptions (user_id, endpoint, endpoint_p256dh_key, endpoint_auth_key)
SELECT :user_id!::uuid, :endpoint!::text, :p256dh!::text, :auth!::text
WHERE (
    SELECT count(*) FROM webpush_subscriptions WHERE user_id = :user_id!::uuid AND endpoint <> :endpoint!::text
) < :max!::int
ON CONFLICT (user_id, endpoint) DO UPDATE
SET endpoint_p256dh_key = excluded.endpoint_p256dh_key, endpoint_auth_key = excluded.endpoint_auth_key
RETURNING id;

/* @name DeleteWebpushSubscription */
DELETE FROM webpush_subscriptions WHERE user_id = :user_id!::uuid AND endpoint = :endpoint!::text RETURNING id;

/* @name DeleteWebpushSubscriptionByID */
-- A push service said the endpoint is gone (400/403/404/410).
DELETE FROM webpush_subscriptions WHERE id = :id!::uuid RETURNING id;

/* @name GetWebpushSubscriptionsByUserID */
-- Empty when the user opted out of pushes.
SELECT s.id, s.endpoint, s.endpoint_p256dh_key, s.endpoint_auth_key
FROM webpush_subscriptions s
JOIN users u ON u.id = s.user_id
WHERE s.user_id = :user_id!::uuid AND u.webpush_enabled
ORDER BY s.created_at, s.id;

/* @name GetAllWebpushSubscriptionsByUserID */
-- The test notification goes out even to users who opted out of turn notifications.
SELECT id, endpoint, endpoint_p256dh_key, endpoint_auth_key
FROM webpush_subscriptions
WHERE user_id = :user_id!::uuid
ORDER BY created_at, id;

/* @name SetWebpushEnabled */
UPDATE users SET webpush_enabled = :enabled!::boolean, updated_at = now() WHERE id = :user_id!::uuid RETURNING webpush_enabled;

/* @name GetWebpushEnabled */
SELECT webpush_enabled FROM users WHERE id = :user_id!::uuid;

/* @name InsertSiteConfigIfAbsent */
-- VAPID keys are generated once: the first writer wins and everyone reads its value back.
INSERT INTO site_configs (key, value) VALUES (:key!::text, :value!::text) ON CONFLICT (key) DO NOTHING;
