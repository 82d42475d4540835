/* @name InsertChat */
INSERT INTO chats (id, owner_id, title, title_source, status, last_model_config_id, labels, agent_id)
VALUES (
    :id!::uuid,
    :owner_id!::uuid,
    :title!::text,
    COALESCE(:title_source::text, 'first_words'),
    :status!::chat_status,
    :last_model_config_id::uuid,
    :labels!::jsonb,
    :agent_id::uuid
)
-- A chat id derived from a request's Idempotency-Key is taken when the request is replayed: nothing is inserted.
ON CONFLICT (id) DO NOTHING
RETURNING *;

/* @name GetChatByID */
-- The chat's object loads its row with the chat's viewer grants, in the same statement.
SELECT
    c.*,
    ARRAY(SELECT a.user_id FROM chat_acl a WHERE a.chat_id = c.id AND a.user_id IS NOT NULL) AS "acl_user_ids!",
    ARRAY(SELECT a.group_id FROM chat_acl a WHERE a.chat_id = c.id AND a.group_id IS NOT NULL) AS "acl_group_ids!"
FROM chats c
WHERE c.id = :id!::uuid;

/* @name GetChatsByOwner */
SELECT *
FROM chats
WHERE owner_id = :owner_id!::uuid AND archived = :archived!::boolean
ORDER BY updated_at DESC, id DESC
LIMIT :limit!::int OFFSET :offset!::int;

/* @name UpdateChatMeta */
-- NULL leaves a field unchanged. A title given here is the owner's: the title model never replaces it.
UPDATE chats
SET
    title = COALESCE(:title::text, title),
    title_source = CASE WHEN :title::text IS NULL THEN title_source ELSE 'owner' END,
    archived = COALESCE(:archived::boolean, archived),
    labels = COALESCE(:labels::jsonb, labels),
    updated_at = now()
WHERE id = :id!::uuid
RETURNING *;

/* @name UpdateChatStatus */
-- Tool calls wait for approval only while the chat is requires_action: any other status clears them. A turn's end
-- that wrote no message (a failure before any output) stores its model call's record and debug run here, as
-- InsertChatMessages does (:turn_record, :debug_run; NULL: none).
WITH turn_record AS (
    INSERT INTO chat_turns (
        id, chat_id, turn_id, user_id, model_config_id, provider, model, outcome, error_kind,
        queue_ms, first_token_ms, total_ms, input_tokens, output_tokens, cost_micros, tool_steps
    )
    SELECT
        (r.v ->> 'id')::uuid, c.id, r.v ->> 'turn_id', c.owner_id, (r.v ->> 'model_config_id')::uuid,
        r.v ->> 'provider', r.v ->> 'model', r.v ->> 'outcome', r.v ->> 'error_kind',
        (r.v ->> 'queue_ms')::int, (r.v ->> 'first_token_ms')::int, (r.v ->> 'total_ms')::int,
        (r.v ->> 'input_tokens')::bigint, (r.v ->> 'output_tokens')::bigint, (r.v ->> 'cost_micros')::bigint,
        (r.v ->> 'tool_steps')::int
    FROM (SELECT :turn_record::jsonb AS v) r
    JOIN chats c ON c.id = :id!::uuid
    WHERE r.v IS NOT NULL
    ON CONFLICT (id) DO NOTHING
), debug_run AS (
    INSERT INTO chat_debug_runs (id, chat_id, model_config_id, started_at, request, response, attempts, timings)
    SELECT
        (d.v ->> 'id')::uuid, c.id, (d.v ->> 'model_config_id')::uuid, (d.v ->> 'started_at')::timestamptz,
        d.v -> 'request', d.v -> 'response', d.v -> 'attempts', d.v -> 'timings'
    FROM (SELECT :debug_run::jsonb AS v) d
    JOIN chats c ON c.id = :id!::uuid
    WHERE d.v IS NOT NULL
    ON CONFLICT (id) DO NOTHING
)
UPDATE chats
SET
    status = :status!::chat_status,
    last_error = :last_error::jsonb,
    pending_tool_calls = CASE WHEN :status!::chat_status = 'requires_action' THEN pending_tool_calls ELSE '[]'::jsonb END,
    updated_at = now()
WHERE id = :id!::uuid
RETURNING *;

/* @name DeleteChatByID */
-- All chat-scoped child tables are removed via ON DELETE CASCADE.
DELETE FROM chats WHERE id = :id!::uuid RETURNING id;

/* @name CreateChat */
-- A new chat in one statement: the chat row (running: its first turn starts at once), then the deployment's system
-- prompt as a system message when one is set, then the given messages (parallel arrays, in order). Chats with an agent
-- pin its context first and go through a transaction instead. A chat id that is taken (a request replayed with its
-- Idempotency-Key) inserts nothing. The answer: the chat row and each message, as JSON.
WITH chat AS (
    INSERT INTO chats (id, owner_id, title, title_source, status, last_model_config_id, labels, agent_id)
    VALUES (:id!::uuid, :owner_id!::uuid, :title!::text, :title_source!::text, 'running', :model_config_id!::uuid, :labels!::jsonb, NULL)
    ON CONFLICT (id) DO NOTHING
    RETURNING *
), prompt AS (
    -- site_configs holds JSON text; the prompt is a JSON string, trimmed like the Worker trims it.
    SELECT btrim(value::jsonb #>> '{}', E' \t\r\n') AS text
    FROM site_configs
    WHERE key = 'system_prompt' AND jsonb_typeof(value::jsonb) = 'string'
), first AS (
    SELECT 'system'::chat_message_role AS role, jsonb_build_array(jsonb_build_object('type', 'text', 'text', p.text)) AS content,
        :owner_id!::text AS created_by, '' AS key, 0::bigint AS ord
    FROM prompt p
    WHERE p.text <> ''
    UNION ALL
    SELECT m.role, m.content, m.created_by, m.key, m.ord
    FROM unnest(:roles!::chat_message_role[], :contents!::jsonb[], :created_bys!::text[], :keys!::text[])
        WITH ORDINALITY AS m (role, content, created_by, key, ord)
), inserted AS (
    INSERT INTO chat_messages (chat_id, role, content, model_config_id, created_by, idempotency_key)
    SELECT c.id, f.role, f.content, c.last_model_config_id, NULLIF(f.created_by, '')::uuid, NULLIF(f.key, '')
    FROM chat c, first f
    ORDER BY f.ord
    RETURNING id, chat_id, role, content, model_config_id, created_by, input_tokens, output_tokens, total_tokens, reasoning_tokens,
        cache_read_tokens, cache_creation_tokens, deleted, created_at, idempotency_key, cost_micros
)
SELECT to_jsonb(c.*) AS chat, (SELECT jsonb_agg(to_jsonb(i.*) ORDER BY i.id) FROM inserted i) AS messages
FROM chat c;
