/* @name GetMcpServers */
SELECT * FROM mcp_servers ORDER BY name COLLATE "C";

/* @name GetEnabledMcpServers */
-- The servers a turn offers tools from (cached per isolate: functions/services/mcp-servers.ts).
SELECT id, name, url, headers, headers_key_id, tool_approval, allowed_tools, updated_at
FROM mcp_servers
WHERE enabled
ORDER BY name COLLATE "C";

/* @name GetMcpServerByIDForUpdate */
SELECT * FROM mcp_servers WHERE id = :id!::uuid FOR UPDATE;

/* @name InsertMcpServer */
-- The id is chosen by the caller: the sealed headers are bound to it.
INSERT INTO mcp_servers (id, name, url, headers, headers_key_id, enabled, tool_approval, allowed_tools, created_by)
VALUES (
    :id!::uuid,
    :name!::text,
    :url!::text,
    :headers::text,
    :headers_key_id::text,
    :enabled!::boolean,
    :tool_approval!::text,
    :allowed_tools::text[],
    :created_by::uuid
)
RETURNING *;

/* @name UpdateMcpServer */
UPDATE mcp_servers
SET
    name = :name!::text,
    url = :url!::text,
    headers = :headers::text,
    headers_key_id = :headers_key_id::text,
    enabled = :enabled!::boolean,
    tool_approval = :tool_approval!::text,
    allowed_tools = :allowed_tools::text[],
    updated_at = now()
WHERE id = :id!::uuid
RETURNING *;

/* @name DeleteMcpServerByID */
DELETE FROM mcp_servers WHERE id = :id!::uuid RETURNING id;

/* @name GetMcpServersSealedWithOtherKey */
-- Key rotation: servers whose headers were sealed by an encryption key other than the current one.
SELECT id, headers, headers_key_id
FROM mcp_servers
WHERE headers IS NOT NULL AND headers_key_id <> :current_key_id!::text
ORDER BY id
LIMIT :limit!::int;

/* @name ResealMcpServerHeaders */
UPDATE mcp_servers
SET headers = :headers!::text, headers_key_id = :headers_key_id!::text
WHERE id = :id!::uuid AND headers_key_id = :previous_key_id!::text
RETURNING id;
