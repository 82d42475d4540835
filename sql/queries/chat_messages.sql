/* @name InsertChatMessages */
-- The hottest write. One round trip for a batch of messages of one chat (parallel arrays, in input order:
-- identity values are assigned in the SELECT's order). The updated_chat CTE rewrites
-- chats.last_model_config_id only when the incoming config IS DISTINCT FROM the stored one, so same-model
-- inserts never touch the chats row. created_bys uses '' for "no user"; usages holds a usage object or
-- JSON null per message (arrays of nullable scalars do not survive the typed parameters).
WITH updated_chat AS (
    UPDATE chats
    SET last_model_config_id = :model_config_id::uuid
    WHERE id = :chat_id!::uuid
        AND :model_config_id::uuid IS NOT NULL
        AND chats.last_model_config_id IS DISTINCT FROM :model_config_id::uuid
    RETURNING id
)
INSERT INTO chat_messages (
    chat_id, role, content, model_config_id, created_by,
    input_tokens, output_tokens, total_tokens, reasoning_tokens, cache_read_tokens, cache_creation_tokens
)
SELECT
    :chat_id!::uuid,
    m.role,
    m.content,
    :model_config_id::uuid,
    NULLIF(m.created_by, '')::uuid,
    (m.usage ->> 'input_tokens')::bigint,
    (m.usage ->> 'output_tokens')::bigint,
    (m.usage ->> 'total_tokens')::bigint,
    (m.usage ->> 'reasoning_tokens')::bigint,
    (m.usage ->> 'cache_read_tokens')::bigint,
    (m.usage ->> 'cache_creation_tokens')::bigint
FROM unnest(
    :roles!::chat_message_role[],
    :contents!::jsonb[],
    :created_bys!::text[],
    :usages!::jsonb[]
) WITH ORDINALITY AS m (role, content, created_by, usage, ord)
ORDER BY m.ord
RETURNING *;

/* @name GetChatMessagesByChatID */
-- Stream catch-up on a cache miss and full refreshes: every live message after an id.
SELECT *
FROM chat_messages
WHERE chat_id = :chat_id!::uuid AND id > :after_id!::bigint AND deleted = FALSE
ORDER BY id ASC;

/* @name GetChatMessagesAfter */
SELECT *
FROM chat_messages
WHERE chat_id = :chat_id!::uuid AND id > :after_id!::bigint AND id < :before_id!::bigint AND deleted = FALSE
ORDER BY id ASC
LIMIT :limit!::int;

/* @name GetChatMessagesBefore */
-- The newest page before an id; the caller reverses it to ascending order.
SELECT *
FROM chat_messages
WHERE chat_id = :chat_id!::uuid AND id < :before_id!::bigint AND id > :after_id!::bigint AND deleted = FALSE
ORDER BY id DESC
LIMIT :limit!::int;

/* @name GetNewestChatMessages */
-- Warms a cold cache: the newest live messages, newest first.
SELECT *
FROM chat_messages
WHERE chat_id = :chat_id!::uuid AND deleted = FALSE
ORDER BY id DESC
LIMIT :limit!::int;

/* @name GetChatMessageByID */
SELECT * FROM chat_messages WHERE chat_id = :chat_id!::uuid AND id = :id!::bigint AND deleted = FALSE;

/* @name SoftDeleteChatMessagesAfter */
-- An edit: every message after the edited one goes.
UPDATE chat_messages SET deleted = TRUE
WHERE chat_id = :chat_id!::uuid AND id > :id!::bigint AND deleted = FALSE;

/* @name UpdateChatMessageContent */
UPDATE chat_messages SET content = :content!::jsonb
WHERE chat_id = :chat_id!::uuid AND id = :id!::bigint AND deleted = FALSE
RETURNING *;
