-- Compaction: when a chat's context reaches its model's compression threshold, older history is summarised.
-- The model then sees the summary instead of every message with id <= through_message_id. Messages stay
-- untouched (history is still readable in full); a summary is a separate row, immune to edits of later messages.
CREATE TABLE chat_summaries (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    chat_id uuid NOT NULL REFERENCES chats (id) ON DELETE CASCADE,
    through_message_id bigint NOT NULL,
    content text NOT NULL,
    model_config_id uuid REFERENCES chat_model_configs (id),
    input_tokens bigint,
    output_tokens bigint,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX chat_summaries_chat_id ON chat_summaries (chat_id, id DESC);
