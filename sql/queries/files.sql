/* @name ReserveChatFile */
-- An upload starts: the file's row (not ready) and its bytes reserved against the owner's quota, in one statement.
-- The usage row is locked by the upsert, so concurrent uploads of one user are checked one after the other. No row
-- back: the quota is full.
WITH reserved AS (
    INSERT INTO chat_file_usage AS u (owner_id, bytes)
    SELECT :owner_id!::uuid, :size!::bigint
    WHERE :size!::bigint <= :quota!::bigint
    ON CONFLICT (owner_id) DO UPDATE SET bytes = u.bytes + EXCLUDED.bytes
    WHERE u.bytes + EXCLUDED.bytes <= :quota!::bigint
    RETURNING u.owner_id
)
INSERT INTO chat_files (id, owner_id, name, media_type, size, r2_key)
SELECT :id!::uuid, reserved.owner_id, :name!, :media_type!, :size!::bigint, :r2_key!
FROM reserved
RETURNING id;

/* @name FinalizeChatFile */
-- The bytes are stored: the row is ready with its real size, and the reservation becomes that size.
WITH done AS (
    UPDATE chat_files SET ready = TRUE, size = :size!::bigint, sha256 = :sha256!
    WHERE id = :id!::uuid AND ready = FALSE
    RETURNING id, owner_id, name, media_type, size, sha256, created_at, :reserved!::bigint - :size!::bigint AS give_back
), usage AS (
    UPDATE chat_file_usage u SET bytes = u.bytes - done.give_back FROM done WHERE u.owner_id = done.owner_id
)
SELECT id, name, media_type, size, sha256, created_at FROM done;

/* @name AbandonChatFile */
-- An upload failed: its row goes and its reservation is given back.
WITH gone AS (
    DELETE FROM chat_files WHERE id = :id!::uuid AND ready = FALSE RETURNING owner_id, size
)
UPDATE chat_file_usage u SET bytes = greatest(0, u.bytes - gone.size) FROM gone WHERE u.owner_id = gone.owner_id;

/* @name GetReadableChatFile */
-- A file the user may read: theirs, or used by a message of a chat they can read (the condition of
-- view chat_readers, the read rule in SQL: the chat's owner, and its viewers directly or through a group).
SELECT f.id, f.name, f.media_type, f.size, f.sha256, f.created_at, f.r2_key
FROM chat_files f
WHERE f.id = :id!::uuid AND f.ready AND f.deleted_at IS NULL
    AND (
        f.owner_id = :user_id!::uuid
        OR EXISTS (
            SELECT 1 FROM chat_message_files l JOIN chat_readers r ON r.chat_id = l.chat_id
            WHERE l.file_id = f.id AND r.user_id = :user_id!::uuid
        )
    );

/* @name GetOwnChatFiles */
-- The poster's files among :ids (ready, not removed): what a message's file parts may name.
SELECT id, name, media_type, size
FROM chat_files
WHERE id = ANY(:ids!::uuid[]) AND owner_id = :owner_id!::uuid AND ready AND deleted_at IS NULL;

/* @name GetChatFiles */
-- The files used by a chat's live messages, in the order first used.
SELECT f.id, f.name, f.media_type, f.size, f.sha256, f.created_at
FROM chat_files f
JOIN (
    SELECT l.file_id, min(l.message_id) AS first_use
    FROM chat_message_files l JOIN chat_messages m ON m.id = l.message_id
    WHERE l.chat_id = :chat_id!::uuid AND NOT m.deleted
    GROUP BY l.file_id
) used ON used.file_id = f.id
WHERE f.ready AND f.deleted_at IS NULL
ORDER BY used.first_use, f.id;

/* @name GetChatFileKeys */
-- The R2 keys of files a turn's prompt needs (files of the chat's messages).
SELECT f.id, f.r2_key, f.name, f.media_type
FROM chat_files f
WHERE f.id = ANY(:ids!::uuid[]) AND f.ready AND f.deleted_at IS NULL
    AND EXISTS (SELECT 1 FROM chat_message_files l WHERE l.file_id = f.id AND l.chat_id = :chat_id!::uuid);

/* @name MarkUnusedChatFiles */
-- The cron, under the retention lock: marks a batch of files to remove (and gives their bytes back to the quota):
-- files no message links any more whose chats went (used before, no link now); files no live message has used since
-- :cutoff (never used, or used only by messages an edit removed); uploads that never finished by :cutoff. Files that a
-- queued message names stay. Answers the marked files and any marked earlier whose removal did not finish.
WITH candidates AS (
    SELECT f.id FROM chat_files f
    WHERE f.deleted_at IS NULL
        AND NOT EXISTS (
            SELECT 1 FROM chat_message_files l JOIN chat_messages m ON m.id = l.message_id
            WHERE l.file_id = f.id AND NOT m.deleted
        )
        AND (
            (f.last_used_at IS NOT NULL AND NOT EXISTS (SELECT 1 FROM chat_message_files l WHERE l.file_id = f.id))
            OR coalesce(f.last_used_at, f.created_at) < :cutoff!::timestamptz
        )
        AND NOT EXISTS (
            SELECT 1 FROM chat_queued_messages q
            WHERE q.content @> jsonb_build_array(jsonb_build_object('type', 'file', 'file_id', f.id::text))
        )
    ORDER BY coalesce(f.last_used_at, f.created_at)
    LIMIT :batch!::int
    FOR UPDATE OF f SKIP LOCKED
), marked AS (
    UPDATE chat_files f SET deleted_at = :now!::timestamptz FROM candidates c WHERE f.id = c.id
    RETURNING f.id, f.r2_key, f.owner_id, f.size
), usage AS (
    UPDATE chat_file_usage u SET bytes = greatest(0, u.bytes - s.total)
    FROM (SELECT owner_id, sum(size) AS total FROM marked GROUP BY owner_id) s
    WHERE u.owner_id = s.owner_id
)
SELECT id, r2_key FROM marked
UNION ALL
SELECT id, r2_key FROM chat_files WHERE deleted_at IS NOT NULL AND deleted_at < :now!::timestamptz
LIMIT :batch!::int;

/* @name DeleteChatFileRows */
-- The bytes are gone from R2: their rows go.
DELETE FROM chat_files WHERE id = ANY(:ids!::uuid[]) AND deleted_at IS NOT NULL RETURNING id;
