/* @name TryRetentionLock */
-- Transaction-level: taken first in each batch's transaction and released by its COMMIT. A session-level lock would
-- break behind a transaction-mode pooler (Neon's pooled endpoint): the lock and the unlock can reach different server
-- connections, and the lock then stays held by a pooled connection, so later runs would never get it. Two
-- overlapping runs interleave batch by batch; no two batches ever run at once.
SELECT pg_try_advisory_xact_lock(hashtext('chatd:retention')::bigint) AS "locked!";

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
