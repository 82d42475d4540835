-- Titles stay as they are (the older schema has no place for their source); forks become ordinary chats.
ALTER TABLE chats DROP CONSTRAINT chats_forked_from_both;
ALTER TABLE chats DROP COLUMN forked_from_message_id;
ALTER TABLE chats DROP COLUMN forked_from_chat_id;
ALTER TABLE chats DROP CONSTRAINT chats_title_source;
ALTER TABLE chats DROP COLUMN title_source;
DELETE FROM site_configs WHERE key = 'title_model';
