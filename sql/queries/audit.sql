/* @name InsertAuditEvent */
INSERT INTO audit_events (actor_id, actor_email, action, target_type, target_id, ip, detail)
VALUES (:actor_id::uuid, :actor_email::text, :action!::text, :target_type::text, :target_id::text, :ip::text,
    :detail!::jsonb)
RETURNING id;

/* @name ListAuditEvents */
-- Newest first; each filter is optional (null: any).
SELECT id::text AS "id!", at, actor_id, actor_email, action, target_type, target_id, ip, detail
FROM audit_events
WHERE (:from::timestamptz IS NULL OR at >= :from::timestamptz)
  AND (:to::timestamptz IS NULL OR at < :to::timestamptz)
  AND (:actor_id::uuid IS NULL OR actor_id = :actor_id::uuid)
  AND (:action::text IS NULL OR action = :action::text)
ORDER BY at DESC, id DESC
LIMIT :limit!::int OFFSET :offset!::int;

/* @name PurgeAuditEvents */
-- One batch of events older than the retention (the cron repeats while a batch comes back full).
WITH gone AS (
    DELETE FROM audit_events
    WHERE id IN (
        SELECT id FROM audit_events WHERE at < now() - make_interval(days => :days!::int) ORDER BY at LIMIT :batch!::int
    )
    RETURNING 1
)
SELECT count(*)::int AS "n!" FROM gone;
