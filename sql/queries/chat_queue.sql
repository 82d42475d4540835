/* @name InsertQueuedMessage */
-- Appends to the chat's queue unless it already holds :max messages, or the request's idempotency key is already
-- stored for the chat (queued, or a message since); then no row comes back.
INSERT INTO chat_queued_messages (chat_id, content, model_config_id, created_by, position, idempotency_key)
SELECT :chat_id!::uuid, :content!::jsonb, :model_config_id::uuid, :created_by::uuid, COALESCE(MAX(position), 0) + 1, :idempotency_key::text
FROM chat_queued_messages
WHERE chat_id = :chat_id!::uuid
HAVING count(*) < :max!::int
    AND (
        :idempotency_key::text IS NULL
        OR NOT EXISTS (SELECT 1 FROM chat_messages m WHERE m.chat_id = :chat_id!::uuid AND m.idempotency_key = :idempotency_key::text)
    )
ON CONFLICT (chat_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
RETURNING *;

/* @name GetQueuedMessageByKey */
-- A queued request replayed with its Idempotency-Key.
SELECT * FROM chat_queued_messages WHERE chat_id = :chat_id!::uuid AND idempotency_key = :key!::text;

/* @name GetQueuedMessages */
SELECT * FROM chat_queued_messages WHERE chat_id = :chat_id!::uuid ORDER BY position ASC, created_at ASC;

/* @name DeleteQueuedMessage */
DELETE FROM chat_queued_messages WHERE chat_id = :chat_id!::uuid AND id = :id!::uuid RETURNING *;

/* @name PromoteQueuedMessage */
-- Moves a queued message before all the others.
UPDATE chat_queued_messages
SET position = (SELECT MIN(position) - 1 FROM chat_queued_messages WHERE chat_id = :chat_id!::uuid)
WHERE chat_id = :chat_id!::uuid AND id = :id!::uuid
RETURNING *;
