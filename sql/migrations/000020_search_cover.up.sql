-- Search without the heap (docs/performance.md "Search"): a covering index over each chat's searchable messages.
--
-- A user's messages lie scattered over the whole table (they are inserted between everyone else's), so ranking the
-- matches of a common word read one heap page per match: on 1,000,000 messages, ~9,200 pages for one user's
-- 10,000 messages, most of them not in shared buffers. That, not ts_rank_cd, was most of the 54 ms. The index below
-- holds, per chat, what the search needs before its LIMIT (id, created_at, deleted and the vector): an index-only
-- scan reads ~1,100 pages (index) for the same user, and only the page's 20 rows go to the heap (for the snippet).
--
-- A btree entry cannot exceed ~2,700 bytes, and a long message's vector can be far larger, so the index takes only
-- the messages whose vector is at most 2,000 bytes (search_covered); the others (long messages, and rows written
-- before this migration until the backfill has marked them) are in a second, narrow index and are read from the
-- heap. SearchMessages reads both, so every message is found either way.
--
-- This part runs in one transaction and takes no long lock: the column is added without a default (a catalog
-- change), and the trigger (which already computes the vector in the inserting statement: no statement is added)
-- sets it from now on. The backfill and the indexes (CREATE INDEX CONCURRENTLY) are in 000020_search_cover.online.sql.

ALTER TABLE chat_messages ADD COLUMN IF NOT EXISTS search_covered boolean;

-- NULL without a vector (tool and system messages), else whether the vector fits the covering index. The size is the
-- vector's as computed, before any compression: an index entry of at most ~2,050 bytes.
CREATE OR REPLACE FUNCTION chat_messages_search_tsv() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    NEW.search_tsv := to_tsvector('chatd_search'::regconfig, chat_message_search_text(NEW.role, NEW.content));
    NEW.search_covered := pg_column_size(NEW.search_tsv) <= 2000;
    RETURN NEW;
END
$$;
