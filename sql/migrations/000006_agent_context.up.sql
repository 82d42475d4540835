-- Agents and their context resources (instruction files, skills, MCP configs, hooks, commands...), and the
-- per-chat pinned copy of them.
--
-- workspace_agent_context_resources is last-writer-wins and keeps no history: every push replaces an agent's
-- whole set. A chat therefore takes its own copy (chat_context_resources) when it is created with an agent and
-- when it is explicitly re-pinned, so it keeps a stable view while the agent drifts. The copy is a table of its
-- own, not message parts (compaction never touches it) and not a column of chats (bodies can be large and the
-- chats row is on the hot path).

CREATE TYPE workspace_agent_context_body_kind AS ENUM (
    'instruction_file', 'skill', 'mcp_config', 'mcp_server', 'plugin', 'hook', 'subagent', 'command'
);
CREATE TYPE workspace_agent_context_resource_status AS ENUM ('ok', 'oversize', 'unreadable', 'invalid', 'excluded');

-- Agents are deployment-wide. Tokens are "<token_id>-<secret>" like users' keys; only the SHA-256 of the
-- secret is stored. The creator may go; the agent stays.
CREATE TABLE workspace_agents (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name text NOT NULL,
    created_by uuid REFERENCES users (id) ON DELETE SET NULL,
    token_id text NOT NULL,
    hashed_secret text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT workspace_agents_name_length CHECK (char_length(name) BETWEEN 1 AND 128)
);

CREATE UNIQUE INDEX workspace_agents_token_id_key ON workspace_agents (token_id);

-- The agent's current set. content_hash and size_bytes are computed by the server; an oversize body is not
-- stored (status 'oversize', body NULL, size_bytes = its size).
CREATE TABLE workspace_agent_context_resources (
    workspace_agent_id uuid NOT NULL REFERENCES workspace_agents (id) ON DELETE CASCADE,
    source text NOT NULL,
    body_kind workspace_agent_context_body_kind NOT NULL,
    body jsonb,
    status workspace_agent_context_resource_status NOT NULL,
    error text,
    source_path text,
    content_hash text NOT NULL,
    size_bytes bigint NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (workspace_agent_id, source),
    CONSTRAINT workspace_agent_context_resources_source_length CHECK (char_length(source) BETWEEN 1 AND 1024),
    CONSTRAINT workspace_agent_context_resources_size CHECK (size_bytes >= 0)
);

-- One row per agent that has pushed: the aggregate hash of its set, bumped version, when it arrived.
CREATE TABLE workspace_agent_context_snapshots (
    workspace_agent_id uuid PRIMARY KEY REFERENCES workspace_agents (id) ON DELETE CASCADE,
    aggregate_hash text NOT NULL,
    version bigint NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now()
);

-- The chat's pinned copy: the agent's columns, keyed by chat. Deliberately no foreign key to the agent, so the
-- pin survives the agent's replacement or deletion; it goes with its chat.
CREATE TABLE chat_context_resources (
    chat_id uuid NOT NULL REFERENCES chats (id) ON DELETE CASCADE,
    source text NOT NULL,
    body_kind workspace_agent_context_body_kind NOT NULL,
    body jsonb,
    status workspace_agent_context_resource_status NOT NULL,
    error text,
    source_path text,
    content_hash text NOT NULL,
    size_bytes bigint NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    pinned_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (chat_id, source)
);

-- The aggregate hash the chat was pinned at, and since when the agent's set differs from it (NULL: not dirty).
ALTER TABLE chats
    ADD COLUMN context_aggregate_hash text,
    ADD COLUMN context_dirty_since timestamptz;

-- An agent's push marks its chats dirty.
CREATE INDEX chats_agent_id ON chats (agent_id) WHERE agent_id IS NOT NULL;
