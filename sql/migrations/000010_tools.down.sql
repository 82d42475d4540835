-- Back to a schema without tools. Messages stay, tool calls and results included (their parts are jsonb, the role
-- 'tool' existed before). A chat waiting for approval cannot be expressed: it ends as an error (kind interrupted),
-- and its pending calls are dropped. The MCP servers cannot be kept (no table for them before).
UPDATE chats
SET status = 'error',
    last_error = jsonb_build_object(
        'kind', 'interrupted',
        'message', 'The turn was waiting for a tool call approval when the server was downgraded. Send the message again to retry.'
    ),
    updated_at = now()
WHERE status = 'requires_action';

DROP TABLE mcp_servers;
ALTER TABLE chats DROP CONSTRAINT chats_pending_tool_calls_array;
ALTER TABLE chats DROP COLUMN pending_tool_calls;

-- An enum value cannot be dropped: the type is rebuilt without it.
ALTER TYPE chat_status RENAME TO chat_status_with_tools;
CREATE TYPE chat_status AS ENUM ('waiting', 'running', 'interrupting', 'error');
ALTER TABLE chats ALTER COLUMN status DROP DEFAULT;
ALTER TABLE chats ALTER COLUMN status TYPE chat_status USING status::text::chat_status;
ALTER TABLE chats ALTER COLUMN status SET DEFAULT 'waiting';
DROP TYPE chat_status_with_tools;
