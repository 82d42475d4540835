/* @name InsertChat */
INSERT INTO chats (id, owner_id, title, status, last_model_config_id, labels, agent_id)
VALUES (
    :id!::uuid,
    :owner_id!::uuid,
    :title!::text,
    :status!::chat_status,
    :last_model_config_id::uuid,
    :labels!::jsonb,
    :agent_id::uuid
)
-- A chat id derived from a request's Idempotency-Key is taken when the request is replayed: nothing is inserted.
ON CONFLICT (id) DO NOTHING
RETURNING *;

/* @name GetChatByID */
SELECT * FROM chats WHERE id = :id!::uuid;

/* @name GetChatsByOwner */
SELECT *
FROM chats
WHERE owner_id = :owner_id!::uuid AND archived = :archived!::boolean
ORDER BY updated_at DESC, id DESC
LIMIT :limit!::int OFFSET :offset!::int;

/* @name UpdateChatMeta */
-- NULL leaves a field unchanged.
UPDATE chats
SET
    title = COALESCE(:title::text, title),
    archived = COALESCE(:archived::boolean, archived),
    labels = COALESCE(:labels::jsonb, labels),
    updated_at = now()
WHERE id = :id!::uuid
RETURNING *;

/* @name UpdateChatStatus */
UPDATE chats
SET status = :status!::chat_status, last_error = :last_error::jsonb, updated_at = now()
WHERE id = :id!::uuid
RETURNING *;

/* @name DeleteChatByID */
-- All chat-scoped child tables are removed via ON DELETE CASCADE.
DELETE FROM chats WHERE id = :id!::uuid RETURNING id;
