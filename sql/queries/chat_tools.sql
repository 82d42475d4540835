/* @name TakePendingToolCall */
-- An approved tool call leaves the chat's calls waiting for approval, in one statement: the chat stays requires_action
-- while other calls wait, else it is running again (the approved call runs, then the turn goes on). Nothing when the
-- call is not waiting (decided already, or its turn ended): the caller answers 409. The denial of a call writes its
-- error result and the same status change with InsertChatMessages instead.
UPDATE chats
SET
    pending_tool_calls = COALESCE(
        (
            SELECT jsonb_agg(e.p ORDER BY e.ord)
            FROM jsonb_array_elements(chats.pending_tool_calls) WITH ORDINALITY AS e (p, ord)
            WHERE e.p ->> 'tool_call_id' <> :tool_call_id!::text
        ),
        '[]'::jsonb
    ),
    status = CASE WHEN jsonb_array_length(pending_tool_calls) > 1 THEN 'requires_action'::chat_status ELSE 'running'::chat_status END,
    last_error = NULL,
    updated_at = now()
WHERE id = :chat_id!::uuid
    AND status = 'requires_action'
    AND EXISTS (
        SELECT 1 FROM jsonb_array_elements(chats.pending_tool_calls) AS x (p) WHERE x.p ->> 'tool_call_id' = :tool_call_id!::text
    )
RETURNING *;
