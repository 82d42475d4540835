-- Removes everything 000006 created. Agents, their context and the chats' pinned copies go with it (there is
-- nowhere older to keep them); chats, their messages and everything else stay.
DROP INDEX chats_agent_id;
ALTER TABLE chats
    DROP COLUMN context_dirty_since,
    DROP COLUMN context_aggregate_hash;
DROP TABLE chat_context_resources;
DROP TABLE workspace_agent_context_snapshots;
DROP TABLE workspace_agent_context_resources;
DROP TABLE workspace_agents;
DROP TYPE workspace_agent_context_resource_status;
DROP TYPE workspace_agent_context_body_kind;
