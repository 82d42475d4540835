ALTER ROLE CURRENT_USER RESET statement_timeout;
DROP INDEX chat_queued_messages_idempotency_key;
ALTER TABLE chat_queued_messages DROP COLUMN idempotency_key;
DROP INDEX chat_messages_idempotency_key;
ALTER TABLE chat_messages DROP COLUMN idempotency_key;
