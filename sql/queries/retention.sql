/* @name TryRetentionLock */
-- Session-level, so it spans the run's batches; only one purge runs at a time across the deployment.
SELECT pg_try_advisory_lock(hashtext('chatd:retention')::bigint) AS "locked!";

/* @name ReleaseRetentionLock */
SELECT pg_advisory_unlock(hashtext('chatd:retention')::bigint) AS "released!";

/* @name ArchiveIdleChats */
-- Auto-archive: chats idle since before the cutoff, never ones with a turn in flight.
UPDATE chats
SET archived = TRUE, updated_at = :now!::timestamptz
WHERE id IN (
    SELECT id FROM chats
    WHERE archived = FALSE
        AND status NOT IN ('running', 'interrupting')
        AND updated_at < :cutoff!::timestamptz
    ORDER BY updated_at ASC
    LIMIT :batch!::int
)
RETURNING id;

/* @name DeleteOldChats */
-- Retention: archived chats untouched since before the cutoff. All chat-scoped child tables are removed via
-- ON DELETE CASCADE.
DELETE FROM chats
WHERE id IN (
    SELECT id FROM chats
    WHERE archived = TRUE AND updated_at < :cutoff!::timestamptz
    ORDER BY updated_at ASC
    LIMIT :batch!::int
)
RETURNING id;
