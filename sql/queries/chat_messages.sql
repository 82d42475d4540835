/* @name InsertChatMessages */
-- The hottest write: one round trip for a batch of messages of one chat (parallel arrays, in input order: identity
-- values are assigned in the SELECT's order), with the chat's status change folded in (:status NULL leaves it;
-- otherwise it and :last_error are set, and updated_at with them). The updated_chat CTE rewrites the chats row only
-- when the incoming config IS DISTINCT FROM the stored one or the status (or its error) changes, so a same-model
-- insert that leaves the status alone never touches the chats row. created_bys uses '' for "no user"; usages holds
-- a usage object or JSON null per message (arrays of nullable scalars do not survive the typed parameters); keys
-- holds each message's idempotency key or '' for none: a key already stored for the chat (as a message, or as a
-- queued message waiting to run) inserts nothing, so a write retried after a lost reply is not applied twice.
-- With a status, :pending_tool_calls (NULL: none) is the chat's tool calls waiting for approval (requires_action).
-- The rows come back without their content (the caller pairs them with what it sent: by idempotency key, and the
-- unkeyed ones in input order, which is id order).
-- With :turn_record (NULL: none), the model call's record goes into chat_turns, and with :debug_run its debug run
-- into chat_debug_runs (migration 000014), in this same statement; their ids are the object's, so a retried write
-- stores them once.
WITH updated_chat AS (
    UPDATE chats
    SET
        last_model_config_id = COALESCE(:model_config_id::uuid, last_model_config_id),
        status = COALESCE(:status::chat_status, status),
        last_error = CASE WHEN :status::chat_status IS NULL THEN last_error ELSE :last_error::jsonb END,
        pending_tool_calls = CASE
            WHEN :status::chat_status IS NULL THEN pending_tool_calls
            ELSE COALESCE(:pending_tool_calls::jsonb, '[]'::jsonb)
        END,
        updated_at = CASE WHEN :status::chat_status IS NULL THEN updated_at ELSE now() END
    WHERE id = :chat_id!::uuid
        AND (
            (:model_config_id::uuid IS NOT NULL AND chats.last_model_config_id IS DISTINCT FROM :model_config_id::uuid)
            OR (
                :status::chat_status IS NOT NULL
                AND (
                    chats.status IS DISTINCT FROM :status::chat_status
                    OR chats.last_error IS DISTINCT FROM :last_error::jsonb
                    OR chats.pending_tool_calls IS DISTINCT FROM COALESCE(:pending_tool_calls::jsonb, '[]'::jsonb)
                )
            )
        )
    RETURNING updated_at
), inserted AS (
    INSERT INTO chat_messages (
        chat_id, role, content, model_config_id, created_by, idempotency_key,
        input_tokens, output_tokens, total_tokens, reasoning_tokens, cache_read_tokens, cache_creation_tokens,
        cost_micros
    )
    SELECT
        :chat_id!::uuid,
        m.role,
        m.content,
        :model_config_id::uuid,
        NULLIF(m.created_by, '')::uuid,
        NULLIF(m.key, ''),
        (m.usage ->> 'input_tokens')::bigint,
        (m.usage ->> 'output_tokens')::bigint,
        (m.usage ->> 'total_tokens')::bigint,
        (m.usage ->> 'reasoning_tokens')::bigint,
        (m.usage ->> 'cache_read_tokens')::bigint,
        (m.usage ->> 'cache_creation_tokens')::bigint,
        (m.usage ->> 'cost_micros')::bigint
    FROM unnest(
        :roles!::chat_message_role[],
        :contents!::jsonb[],
        :created_bys!::text[],
        :usages!::jsonb[],
        :keys!::text[]
    ) WITH ORDINALITY AS m (role, content, created_by, usage, key, ord)
    WHERE m.key = ''
        OR NOT EXISTS (
            SELECT 1 FROM chat_queued_messages q WHERE q.chat_id = :chat_id!::uuid AND q.idempotency_key = m.key
        )
    ORDER BY m.ord
    ON CONFLICT (chat_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
    -- Not the content: the writer has it (it sent it), and parsing it back was a tenth of a turn's Worker CPU.
    RETURNING id, chat_id, role, model_config_id, created_by, input_tokens, output_tokens, total_tokens, reasoning_tokens,
        cache_read_tokens, cache_creation_tokens, deleted, created_at, idempotency_key, cost_micros
), answers AS (
    -- The usage ledger (migration 000011): a usage object may carry cost_micros (the answer's cost in micro-units;
    -- absent or null: not priced). Every assistant message actually inserted adds to its owner's rows of its UTC day
    -- in usage_daily and usage_by_chat; these CTEs read the insert's RETURNING, so a replay that inserts nothing adds
    -- nothing, and other roles add nothing.
    SELECT c.owner_id AS user_id, (i.created_at AT TIME ZONE 'UTC')::date AS day, i.*
    FROM inserted i
    JOIN chats c ON c.id = i.chat_id
    WHERE i.role = 'assistant' AND i.model_config_id IS NOT NULL
), daily AS (
    INSERT INTO usage_daily AS l (user_id, day, model_config_id, turns, unpriced_turns, input_tokens, output_tokens, reasoning_tokens, cache_read_tokens, cache_creation_tokens, cost_micros)
    SELECT
        a.user_id,
        a.day,
        a.model_config_id,
        count(*),
        count(*) FILTER (WHERE a.cost_micros IS NULL),
        COALESCE(sum(a.input_tokens), 0),
        COALESCE(sum(a.output_tokens), 0),
        COALESCE(sum(a.reasoning_tokens), 0),
        COALESCE(sum(a.cache_read_tokens), 0),
        COALESCE(sum(a.cache_creation_tokens), 0),
        COALESCE(sum(a.cost_micros), 0)
    FROM answers a
    GROUP BY a.user_id, a.day, a.model_config_id
    ON CONFLICT (user_id, day, model_config_id) DO UPDATE SET
        turns = l.turns + excluded.turns,
        unpriced_turns = l.unpriced_turns + excluded.unpriced_turns,
        input_tokens = l.input_tokens + excluded.input_tokens,
        output_tokens = l.output_tokens + excluded.output_tokens,
        reasoning_tokens = l.reasoning_tokens + excluded.reasoning_tokens,
        cache_read_tokens = l.cache_read_tokens + excluded.cache_read_tokens,
        cache_creation_tokens = l.cache_creation_tokens + excluded.cache_creation_tokens,
        cost_micros = l.cost_micros + excluded.cost_micros
), by_chat AS (
    INSERT INTO usage_by_chat AS l (chat_id, day, user_id, turns, unpriced_turns, input_tokens, output_tokens, reasoning_tokens, cache_read_tokens, cache_creation_tokens, cost_micros)
    SELECT
        a.chat_id,
        a.day,
        a.user_id,
        count(*),
        count(*) FILTER (WHERE a.cost_micros IS NULL),
        COALESCE(sum(a.input_tokens), 0),
        COALESCE(sum(a.output_tokens), 0),
        COALESCE(sum(a.reasoning_tokens), 0),
        COALESCE(sum(a.cache_read_tokens), 0),
        COALESCE(sum(a.cache_creation_tokens), 0),
        COALESCE(sum(a.cost_micros), 0)
    FROM answers a
    GROUP BY a.chat_id, a.day, a.user_id
    ON CONFLICT (chat_id, day) DO UPDATE SET
        turns = l.turns + excluded.turns,
        unpriced_turns = l.unpriced_turns + excluded.unpriced_turns,
        input_tokens = l.input_tokens + excluded.input_tokens,
        output_tokens = l.output_tokens + excluded.output_tokens,
        reasoning_tokens = l.reasoning_tokens + excluded.reasoning_tokens,
        cache_read_tokens = l.cache_read_tokens + excluded.cache_read_tokens,
        cache_creation_tokens = l.cache_creation_tokens + excluded.cache_creation_tokens,
        cost_micros = l.cost_micros + excluded.cost_micros
), turn_record AS (
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
    JOIN chats c ON c.id = :chat_id!::uuid
    WHERE r.v IS NOT NULL
    ON CONFLICT (id) DO NOTHING
), debug_run AS (
    INSERT INTO chat_debug_runs (id, chat_id, model_config_id, started_at, request, response, attempts, timings)
    SELECT
        (d.v ->> 'id')::uuid, c.id, (d.v ->> 'model_config_id')::uuid, (d.v ->> 'started_at')::timestamptz,
        d.v -> 'request', d.v -> 'response', d.v -> 'attempts', d.v -> 'timings'
    FROM (SELECT :debug_run::jsonb AS v) d
    JOIN chats c ON c.id = :chat_id!::uuid
    WHERE d.v IS NOT NULL
    ON CONFLICT (id) DO NOTHING
)
SELECT inserted.*, (SELECT updated_at FROM updated_chat) AS chat_updated_at
FROM inserted
ORDER BY inserted.id;

/* @name RunQueuedMessage */
-- The next turn of a chat's queue, in one statement: the queued message leaves the queue and becomes the chat's
-- next user message (keeping its request's idempotency key, else 'queue:<its id>'), and the chat is running (no tool
-- call waits for approval then). A message already taken (a retry after a lost reply) inserts nothing.
WITH popped AS (
    DELETE FROM chat_queued_messages
    WHERE chat_id = :chat_id!::uuid AND id = :id!::uuid
    RETURNING *
), updated_chat AS (
    UPDATE chats
    SET status = 'running', last_error = NULL, pending_tool_calls = '[]'::jsonb, updated_at = now(),
        last_model_config_id = :model_config_id!::uuid
    WHERE id = :chat_id!::uuid AND EXISTS (SELECT 1 FROM popped)
    RETURNING updated_at
), inserted AS (
    INSERT INTO chat_messages (chat_id, role, content, model_config_id, created_by, idempotency_key)
    SELECT :chat_id!::uuid, 'user', p.content, :model_config_id!::uuid, p.created_by, COALESCE(p.idempotency_key, 'queue:' || p.id)
    FROM popped p
    ON CONFLICT (chat_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
    RETURNING id, chat_id, role, content, model_config_id, created_by, input_tokens, output_tokens, total_tokens, reasoning_tokens,
        cache_read_tokens, cache_creation_tokens, deleted, created_at, idempotency_key, cost_micros
)
SELECT inserted.*, (SELECT updated_at FROM updated_chat) AS chat_updated_at
FROM inserted;

/* @name GetChatMessageByKey */
-- A request replayed with its Idempotency-Key: the message it stored.
SELECT id, chat_id, role, content, model_config_id, created_by, input_tokens, output_tokens, total_tokens, reasoning_tokens,
    cache_read_tokens, cache_creation_tokens, deleted, created_at, idempotency_key, cost_micros
FROM chat_messages WHERE chat_id = :chat_id!::uuid AND idempotency_key = :key!::text;

/* @name GetChatMessagesByChatID */
-- Stream catch-up on a cache miss and full refreshes: every live message after an id.
SELECT id, chat_id, role, content, model_config_id, created_by, input_tokens, output_tokens, total_tokens, reasoning_tokens,
    cache_read_tokens, cache_creation_tokens, deleted, created_at, idempotency_key, cost_micros
FROM chat_messages
WHERE chat_id = :chat_id!::uuid AND id > :after_id!::bigint AND deleted = FALSE
ORDER BY id ASC;

/* @name GetChatMessagesAfter */
SELECT id, chat_id, role, content, model_config_id, created_by, input_tokens, output_tokens, total_tokens, reasoning_tokens,
    cache_read_tokens, cache_creation_tokens, deleted, created_at, idempotency_key, cost_micros
FROM chat_messages
WHERE chat_id = :chat_id!::uuid AND id > :after_id!::bigint AND id < :before_id!::bigint AND deleted = FALSE
ORDER BY id ASC
LIMIT :limit!::int;

/* @name GetChatMessagesBefore */
-- The newest page before an id; the caller reverses it to ascending order.
SELECT id, chat_id, role, content, model_config_id, created_by, input_tokens, output_tokens, total_tokens, reasoning_tokens,
    cache_read_tokens, cache_creation_tokens, deleted, created_at, idempotency_key, cost_micros
FROM chat_messages
WHERE chat_id = :chat_id!::uuid AND id < :before_id!::bigint AND id > :after_id!::bigint AND deleted = FALSE
ORDER BY id DESC
LIMIT :limit!::int;

/* @name GetNewestChatMessages */
-- Warms a cold cache: the newest live messages, newest first.
SELECT id, chat_id, role, content, model_config_id, created_by, input_tokens, output_tokens, total_tokens, reasoning_tokens,
    cache_read_tokens, cache_creation_tokens, deleted, created_at, idempotency_key, cost_micros
FROM chat_messages
WHERE chat_id = :chat_id!::uuid AND deleted = FALSE
ORDER BY id DESC
LIMIT :limit!::int;

/* @name GetChatMessageByID */
SELECT id, chat_id, role, content, model_config_id, created_by, input_tokens, output_tokens, total_tokens, reasoning_tokens,
    cache_read_tokens, cache_creation_tokens, deleted, created_at, idempotency_key, cost_micros
FROM chat_messages WHERE chat_id = :chat_id!::uuid AND id = :id!::bigint AND deleted = FALSE;

/* @name SoftDeleteChatMessagesAfter */
-- An edit: every message after the edited one goes.
UPDATE chat_messages SET deleted = TRUE
WHERE chat_id = :chat_id!::uuid AND id > :id!::bigint AND deleted = FALSE;

/* @name UpdateChatMessageContent */
UPDATE chat_messages SET content = :content!::jsonb
WHERE chat_id = :chat_id!::uuid AND id = :id!::bigint AND deleted = FALSE
RETURNING id, chat_id, role, content, model_config_id, created_by, input_tokens, output_tokens, total_tokens, reasoning_tokens,
    cache_read_tokens, cache_creation_tokens, deleted, created_at, idempotency_key, cost_micros;
