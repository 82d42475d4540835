/* @name InsertQueuedMessage */
-- Appends to the chat's queue unless it already holds :max messages (then no row comes back).
INSERT INTO chat_queued_messages (chat_id, content, model_config_id, created_by, position)
SELECT :chat_id!::uuid, :content!::jsonb, :model_config_id::uuid, :created_by::uuid, COALESCE(MAX(position), 0) + 1
FROM chat_queued_messages
WHERE chat_id = :chat_id!::uuid
HAVING count(*) < :max!::int
RETURNING *;

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

/* @name PopQueuedMessage */
-- Takes the next message to run.
DELETE FROM chat_queued_messages
WHERE id = (
    SELECT id FROM chat_queued_messages WHERE chat_id = :chat_id!::uuid ORDER BY position ASC, created_at ASC LIMIT 1
)
RETURNING *;
