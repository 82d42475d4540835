-- Agent tools (MCP). A turn may now wait for the chat owner's approval of tool calls: status requires_action, with
-- the calls that wait in chats.pending_tool_calls ([{tool_call_id, name, args, server}], empty otherwise), so the wait
-- survives the chat object's eviction and restarts. Tool calls and results are message parts (jsonb), and tool results
-- are messages of the existing role 'tool': no change to chat_messages.
-- (ADD VALUE inside the migration's transaction is allowed; the value is not used before the commit.)
ALTER TYPE chat_status ADD VALUE IF NOT EXISTS 'requires_action';
ALTER TABLE chats ADD COLUMN pending_tool_calls jsonb NOT NULL DEFAULT '[]'::jsonb;
ALTER TABLE chats ADD CONSTRAINT chats_pending_tool_calls_array CHECK (jsonb_typeof(pending_tool_calls) = 'array');

-- The deployment's MCP servers (owners manage them). Header values are sealed like provider keys (AES-256-GCM under
-- PROVIDER_KEY_ENCRYPTION_KEY, bound to the row): `headers` holds the sealed JSON object, `headers_key_id` the digest
-- of the key that sealed it. allowed_tools NULL offers every tool of the server.
CREATE TABLE mcp_servers (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name text NOT NULL,
    url text NOT NULL,
    headers text,
    headers_key_id text,
    enabled boolean NOT NULL DEFAULT true,
    tool_approval text NOT NULL DEFAULT 'ask',
    allowed_tools text[],
    created_by uuid REFERENCES users (id) ON DELETE SET NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT mcp_servers_name_key UNIQUE (name),
    CONSTRAINT mcp_servers_tool_approval CHECK (tool_approval IN ('auto', 'ask', 'deny')),
    CONSTRAINT mcp_servers_headers_sealed CHECK ((headers IS NULL) = (headers_key_id IS NULL))
);
