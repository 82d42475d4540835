/* @name GetLatestChatSummary */
SELECT * FROM chat_summaries WHERE chat_id = :chat_id!::uuid ORDER BY id DESC LIMIT 1;

/* @name InsertChatSummary */
INSERT INTO chat_summaries (chat_id, through_message_id, content, model_config_id, input_tokens, output_tokens)
VALUES (
    :chat_id!::uuid,
    :through_message_id!::bigint,
    :content!::text,
    :model_config_id::uuid,
    :input_tokens::bigint,
    :output_tokens::bigint
)
RETURNING *;

/* @name DeleteChatSummariesFrom */
-- An edit of message N invalidates every summary that covered it.
DELETE FROM chat_summaries WHERE chat_id = :chat_id!::uuid AND through_message_id >= :from_id!::bigint;
