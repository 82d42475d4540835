-- Chats, their messages and their queue. Every chat-scoped table goes with its chat by ON DELETE CASCADE.

CREATE TYPE chat_status AS ENUM ('waiting', 'running', 'interrupting', 'error');
CREATE TYPE chat_message_role AS ENUM ('system', 'user', 'assistant', 'tool');

CREATE TABLE chats (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    owner_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    title text NOT NULL DEFAULT '',
    status chat_status NOT NULL DEFAULT 'waiting',
    -- May point at a soft-deleted config: history keeps it.
    last_model_config_id uuid REFERENCES chat_model_configs (id),
    archived boolean NOT NULL DEFAULT false,
    labels jsonb NOT NULL DEFAULT '{}'::jsonb,
    -- No foreign key: the chat outlives the agent it was created for.
    agent_id uuid,
    -- {message, kind} of the last failed turn, NULL otherwise.
    last_error jsonb,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT chats_labels_object CHECK (jsonb_typeof(labels) = 'object')
);

-- GET /chats: own chats, newest activity first.
CREATE INDEX chats_owner_archived_updated ON chats (owner_id, archived, updated_at DESC, id DESC);

CREATE TABLE chat_messages (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    chat_id uuid NOT NULL REFERENCES chats (id) ON DELETE CASCADE,
    role chat_message_role NOT NULL,
    -- [part]: {type: "text"|"reasoning", text} (tool parts may follow).
    content jsonb NOT NULL,
    model_config_id uuid REFERENCES chat_model_configs (id),
    created_by uuid REFERENCES users (id) ON DELETE SET NULL,
    input_tokens bigint,
    output_tokens bigint,
    total_tokens bigint,
    reasoning_tokens bigint,
    cache_read_tokens bigint,
    cache_creation_tokens bigint,
    -- Edits soft-delete every later message.
    deleted boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT chat_messages_content_array CHECK (jsonb_typeof(content) = 'array')
);

CREATE INDEX chat_messages_chat_id_id ON chat_messages (chat_id, id);

CREATE TABLE chat_queued_messages (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    chat_id uuid NOT NULL REFERENCES chats (id) ON DELETE CASCADE,
    content jsonb NOT NULL,
    model_config_id uuid REFERENCES chat_model_configs (id),
    created_by uuid REFERENCES users (id) ON DELETE SET NULL,
    -- Smaller runs first; promote moves a message before the others.
    position bigint NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT chat_queued_messages_content_array CHECK (jsonb_typeof(content) = 'array')
);

CREATE INDEX chat_queued_messages_chat_position ON chat_queued_messages (chat_id, position, created_at);
