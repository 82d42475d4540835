/* @name DeleteChatContextResources */
DELETE FROM chat_context_resources WHERE chat_id = :chat_id!::uuid;

/* @name PinAgentContextToChat */
-- Copies the agent's current set into the chat (one INSERT ... SELECT) and, in the same statement (so from
-- the same snapshot), stamps the agent's aggregate hash on the chat and clears its dirty mark. An agent that
-- never pushed has an empty set: its hash is the empty set's (passed in).
WITH copied AS (
    INSERT INTO chat_context_resources (
        chat_id, source, body_kind, body, status, error, source_path, content_hash, size_bytes, created_at, updated_at
    )
    SELECT
        :chat_id!::uuid,
        r.source,
        r.body_kind,
        r.body,
        r.status,
        r.error,
        r.source_path,
        r.content_hash,
        r.size_bytes,
        r.created_at,
        r.updated_at
    FROM workspace_agent_context_resources r
    WHERE r.workspace_agent_id = :workspace_agent_id!::uuid
    RETURNING source
)
UPDATE chats
SET context_aggregate_hash = COALESCE(
        (SELECT s.aggregate_hash FROM workspace_agent_context_snapshots s WHERE s.workspace_agent_id = :workspace_agent_id!::uuid),
        :empty_hash!::text
    ),
    context_dirty_since = NULL
WHERE id = :chat_id!::uuid
RETURNING context_aggregate_hash AS "aggregate_hash!", (SELECT count(*) FROM copied)::int AS "pinned!";

/* @name GetChatContextResources */
SELECT source, body_kind, body, status, error, source_path, content_hash, size_bytes
FROM chat_context_resources
WHERE chat_id = :chat_id!::uuid
ORDER BY source COLLATE "C";

/* @name GetChatContextState */
SELECT agent_id, context_aggregate_hash, context_dirty_since
FROM chats
WHERE id = :id!::uuid;

/* @name GetChatPromptContext */
-- What the runner gives the model: pinned instruction files, then skills, each by source (byte order); and, in the
-- same read, the pinned MCP servers whose tools the chat's turns may use.
SELECT source, body_kind, body
FROM chat_context_resources
WHERE chat_id = :chat_id!::uuid
    AND body_kind IN ('instruction_file', 'skill', 'mcp_server')
    AND status = 'ok'
    AND body IS NOT NULL
ORDER BY body_kind, source COLLATE "C";
