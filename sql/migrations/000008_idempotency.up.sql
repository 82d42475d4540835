-- Idempotency keys, so that a write retried after a lost reply is never applied twice.
--   chat_messages: 'turn:<uuid>' on a turn's assistant message (the chat object's outbox retries it until Postgres
--   commits it), 'req:<Idempotency-Key>' on a user message a client POSTed with that header, 'queue:<uuid>' on a
--   message taken from the queue. chat_queued_messages: 'req:<Idempotency-Key>' of a POST that was queued; the key
--   moves to the message when the queue runs it.
ALTER TABLE chat_messages ADD COLUMN idempotency_key text;
CREATE UNIQUE INDEX chat_messages_idempotency_key ON chat_messages (chat_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;

ALTER TABLE chat_queued_messages ADD COLUMN idempotency_key text;
CREATE UNIQUE INDEX chat_queued_messages_idempotency_key ON chat_queued_messages (chat_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;

-- The server ends a statement itself before the clients' timeout (PG_STATEMENT_TIMEOUT_MS, 15 s by default) ends
-- the wait for it, so a statement the client gave up on does not commit later. A role default, because Neon's
-- transaction-mode pooler ignores startup parameters and session SETs. The migration runner sets its own session
-- to no timeout. Keep it below PG_STATEMENT_TIMEOUT_MS if you lower that (ALTER ROLE ... SET statement_timeout).
ALTER ROLE CURRENT_USER SET statement_timeout = '14s';
