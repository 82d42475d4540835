-- The online part of 000013_search (see its .up.sql), run outside a transaction, one statement at a time.

-- Backfill the messages stored before the trigger existed, 5,000 ids per transaction: each batch locks only its
-- rows, briefly. Messages inserted meanwhile have their vector from the trigger and are skipped.
DO $$
DECLARE
    next_id bigint := 0;
    last_id bigint;
BEGIN
    SELECT COALESCE(max(id), 0) INTO last_id FROM chat_messages;
    WHILE next_id < last_id LOOP
        UPDATE chat_messages
        SET search_tsv = to_tsvector('chatd_search'::regconfig, chat_message_search_text(role, content))
        WHERE id > next_id AND id <= next_id + 5000 AND search_tsv IS NULL AND role IN ('user', 'assistant');
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
        WHERE c.relname = 'chat_messages_search_tsv' AND NOT i.indisvalid
    ) THEN
        DROP INDEX chat_messages_search_tsv;
    END IF;
END
$$;

-- online statement --

-- Only user and assistant messages have a vector; the index holds nothing for the others.
CREATE INDEX CONCURRENTLY IF NOT EXISTS chat_messages_search_tsv ON chat_messages USING gin (search_tsv)
    WHERE search_tsv IS NOT NULL;
