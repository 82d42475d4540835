-- Conversation tools: titles written by a model, forks.

-- Where a chat's title came from: 'first_words' (the first message's first words, set at creation: the title model
-- replaces it after the chat's first answer), 'owner' (given at creation or by PATCH: never replaced), 'model' (the
-- title model wrote it). Chats that exist already keep 'first_words': their next answer gives them a model's title.
ALTER TABLE chats ADD COLUMN title_source text NOT NULL DEFAULT 'first_words';
ALTER TABLE chats ADD CONSTRAINT chats_title_source CHECK (title_source IN ('first_words', 'owner', 'model'));

-- A fork's origin: the chat and the message it was forked at. No foreign key: a fork outlives its original (the
-- original's owner may delete it; the fork is someone else's chat, maybe).
ALTER TABLE chats ADD COLUMN forked_from_chat_id uuid;
ALTER TABLE chats ADD COLUMN forked_from_message_id bigint;
ALTER TABLE chats ADD CONSTRAINT chats_forked_from_both
    CHECK ((forked_from_chat_id IS NULL) = (forked_from_message_id IS NULL));
