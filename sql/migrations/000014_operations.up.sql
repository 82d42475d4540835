-- Operations: a record of every model call (chat_turns) and, with the `debug_runs` setting on, what was sent to the
-- model and what came back (chat_debug_runs). Both are written by InsertChatMessages, in the statement that writes
-- the call's answer (no statement of their own; an outbox retry writes them once: the id is the object's).
-- Both are chat-scoped: the retention purge's chat delete removes them (ON DELETE CASCADE), so they follow the chats'.

-- One row per model call that ended (answered, asked for tools, failed or was stopped). user_id is the chat owner's,
-- provider and model as the call ran (the config may change later). Times in ms: queue_ms from when the call was
-- wanted (the message posted or taken from the queue, or the previous step written) to the request sent;
-- first_token_ms from the request sent to the first streamed token (NULL: none came); total_ms request to end.
CREATE TABLE chat_turns (
    id uuid PRIMARY KEY,
    chat_id uuid NOT NULL REFERENCES chats (id) ON DELETE CASCADE,
    turn_id text NOT NULL,
    user_id uuid NOT NULL,
    model_config_id uuid,
    provider text NOT NULL,
    model text NOT NULL,
    outcome text NOT NULL,
    error_kind text,
    queue_ms integer NOT NULL,
    first_token_ms integer,
    total_ms integer NOT NULL,
    input_tokens bigint NOT NULL DEFAULT 0,
    output_tokens bigint NOT NULL DEFAULT 0,
    cost_micros bigint,
    tool_steps integer NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now()
);
-- Insights read a time window across the deployment; the chat purge deletes by chat.
CREATE INDEX chat_turns_created_at ON chat_turns (created_at);
CREATE INDEX chat_turns_chat_id ON chat_turns (chat_id);

-- A model call's debug run (setting `debug_runs`: errors | all): the request as sent (credentials redacted, file
-- bytes replaced by their metadata, bounded in size by the object), the response, each attempt, the timings.
-- Purged by the cron after the setting's retention_days, and with its chat.
CREATE TABLE chat_debug_runs (
    id uuid PRIMARY KEY,
    chat_id uuid NOT NULL REFERENCES chats (id) ON DELETE CASCADE,
    model_config_id uuid,
    started_at timestamptz NOT NULL,
    request jsonb NOT NULL,
    response jsonb NOT NULL,
    attempts jsonb NOT NULL,
    timings jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX chat_debug_runs_chat_id ON chat_debug_runs (chat_id, started_at);
CREATE INDEX chat_debug_runs_created_at ON chat_debug_runs (created_at);
