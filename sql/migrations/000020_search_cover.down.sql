-- Reverts 000020_search_cover: the two indexes, the column, and the trigger as 000013 wrote it.
DROP INDEX IF EXISTS chat_messages_search_cover;
DROP INDEX IF EXISTS chat_messages_search_uncovered;
CREATE OR REPLACE FUNCTION chat_messages_search_tsv() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    NEW.search_tsv := to_tsvector('chatd_search'::regconfig, chat_message_search_text(NEW.role, NEW.content));
    RETURN NEW;
END
$$;
ALTER TABLE chat_messages DROP COLUMN IF EXISTS search_covered;
