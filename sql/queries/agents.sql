/* @name InsertWorkspaceAgent */
INSERT INTO workspace_agents (name, created_by, token_id, hashed_secret)
VALUES (:name!::text, :created_by::uuid, :token_id!::text, :hashed_secret!::text)
RETURNING id, name, created_by, created_at;

/* @name GetWorkspaceAgentByTokenID */
-- Agent authentication: the caller compares the hashed secret.
SELECT id, name, created_by, hashed_secret
FROM workspace_agents
WHERE token_id = :token_id!::text;

/* @name GetWorkspaceAgentByID */
SELECT id, name, created_by, created_at
FROM workspace_agents
WHERE id = :id!::uuid;

/* @name LockWorkspaceAgentForUpdate */
-- A push holds this until it commits: pushes of one agent, and pins taken from it (FOR SHARE), serialise.
SELECT id FROM workspace_agents WHERE id = :id!::uuid FOR UPDATE;

/* @name LockWorkspaceAgentForShare */
-- Taken before pinning an agent's context, in its own statement so the copy that follows sees any push that
-- committed while this waited.
SELECT id FROM workspace_agents WHERE id = :id!::uuid FOR SHARE;

/* @name GetAgentContextSnapshot */
SELECT aggregate_hash, version, received_at
FROM workspace_agent_context_snapshots
WHERE workspace_agent_id = :workspace_agent_id!::uuid;

/* @name DeleteAgentContextResources */
DELETE FROM workspace_agent_context_resources WHERE workspace_agent_id = :workspace_agent_id!::uuid;

/* @name InsertAgentContextResources */
-- The whole set in one statement: a JSON array of rows (hashes and sizes computed by the server; JSON null for
-- an absent body, error or source_path).
INSERT INTO workspace_agent_context_resources (
    workspace_agent_id, source, body_kind, body, status, error, source_path, content_hash, size_bytes
)
SELECT
    :workspace_agent_id!::uuid,
    r.source,
    r.body_kind,
    r.body,
    r.status,
    r.error,
    r.source_path,
    r.content_hash,
    r.size_bytes
FROM jsonb_to_recordset(:resources!::jsonb) AS r (
    source text,
    body_kind workspace_agent_context_body_kind,
    body jsonb,
    status workspace_agent_context_resource_status,
    error text,
    source_path text,
    content_hash text,
    size_bytes bigint
);

/* @name UpsertAgentContextSnapshot */
INSERT INTO workspace_agent_context_snapshots (workspace_agent_id, aggregate_hash, version, received_at)
VALUES (:workspace_agent_id!::uuid, :aggregate_hash!::text, 1, now())
ON CONFLICT (workspace_agent_id) DO UPDATE
SET aggregate_hash = EXCLUDED.aggregate_hash,
    version = workspace_agent_context_snapshots.version + 1,
    received_at = EXCLUDED.received_at
RETURNING aggregate_hash, version, received_at;

/* @name MarkAgentChatsContextDirty */
-- After a push that changed the agent's aggregate hash: its live chats pinned at another hash become dirty.
-- Chats already dirty keep the time they became so (and are not rewritten).
UPDATE chats
SET context_dirty_since = now()
WHERE agent_id = :workspace_agent_id!::uuid
    AND archived = FALSE
    AND context_dirty_since IS NULL
    AND context_aggregate_hash IS DISTINCT FROM :aggregate_hash!::text
RETURNING id;

/* @name GetAgentContextHashes */
-- The agent's current (source, content_hash) pairs. No row at all: the agent does not exist; one row with a
-- NULL source: it exists and has no resources.
SELECT a.id AS "agent_id!", r.source AS "source?", r.content_hash AS "content_hash?"
FROM workspace_agents a
LEFT JOIN workspace_agent_context_resources r ON r.workspace_agent_id = a.id
WHERE a.id = :workspace_agent_id!::uuid;

/* @name RotateWorkspaceAgentToken */
-- The old token stops working with this commit (agent authentication reads this row every time).
UPDATE workspace_agents
SET token_id = :token_id!::text, hashed_secret = :hashed_secret!::text, updated_at = now()
WHERE id = :id!::uuid
RETURNING id, name;

/* @name DeleteWorkspaceAgent */
-- Its context resources and snapshot go with it (ON DELETE CASCADE); chats keep their pinned copies.
DELETE FROM workspace_agents WHERE id = :id!::uuid RETURNING id;
