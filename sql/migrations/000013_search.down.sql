-- Reverts 000013_search: the index, the column, the trigger and the functions; messages are untouched.
DROP INDEX IF EXISTS chat_messages_search_tsv;
DROP TRIGGER IF EXISTS chat_messages_search_tsv ON chat_messages;
DROP FUNCTION IF EXISTS chat_messages_search_tsv();
ALTER TABLE chat_messages DROP COLUMN IF EXISTS search_tsv;
DROP FUNCTION IF EXISTS chat_message_search_text(chat_message_role, jsonb);
DROP FUNCTION IF EXISTS chatd_search_prepare(text);
DROP TEXT SEARCH CONFIGURATION IF EXISTS chatd_search;
DROP EXTENSION IF EXISTS unaccent;
