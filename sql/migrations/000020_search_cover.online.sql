-- The online part of 000020_search_cover (see its .up.sql), run outside a transaction, one statement at a time.

-- Mark the messages stored before the trigger set search_covered, 5,000 ids per transaction: each batch locks only
-- its rows, briefly. The stored vector may be compressed; its stored size is then what an index entry would hold.
-- Until a row is marked, SearchMessages finds it through the second index below (search_covered IS NOT TRUE).
DO $$
DECLARE
    next_id bigint := 0;
    last_id bigint;
BEGIN
    SELECT COALESCE(max(id), 0) INTO last_id FROM chat_messages;
    WHILE next_id < last_id LOOP
        UPDATE chat_messages
        SET search_covered = pg_column_size(search_tsv) <= 2000
        WHERE id > next_id AND id <= next_id + 5000 AND search_covered IS NULL AND search_tsv IS NOT NULL;
        next_id := next_id + 5000;
        COMMIT;
    END LOOP;
END
$$;

-- online statement --

-- A build that failed half way leaves an invalid index behind: drop it so the next statement builds it again.
DO $$
BEGIN
    IF EXISTS (
        SELECT 1 FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
        WHERE c.relname IN ('chat_messages_search_cover', 'chat_messages_search_uncovered') AND NOT i.indisvalid
    ) THEN
        DROP INDEX IF EXISTS chat_messages_search_cover;
        DROP INDEX IF EXISTS chat_messages_search_uncovered;
    END IF;
END
$$;

-- online statement --

-- Per chat, everything SearchMessages needs before its LIMIT: an index-only scan over the caller's chats.
CREATE INDEX CONCURRENTLY IF NOT EXISTS chat_messages_search_cover ON chat_messages (chat_id)
    INCLUDE (created_at, id, deleted, search_tsv)
    WHERE search_covered;

-- online statement --

-- The searchable messages the covering index does not hold: long ones, and any not marked yet.
CREATE INDEX CONCURRENTLY IF NOT EXISTS chat_messages_search_uncovered ON chat_messages (chat_id)
    WHERE search_tsv IS NOT NULL AND search_covered IS NOT TRUE;
