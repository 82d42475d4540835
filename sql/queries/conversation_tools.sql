/* @name SetModelTitle */
-- The title model's answer for a chat, and its cost, in one statement: the title replaces one taken from the first
-- message only (the owner's own title is never replaced, even one set while the model was writing), and the call's
-- tokens and cost go to the usage ledger (migration 000011) of the chat's owner, whatever became of the title. A
-- title call is not a turn: it adds tokens and cost, not `turns`. The chat's updated_at stays (a title is no activity).
WITH titled AS (
    UPDATE chats SET title = :title::text, title_source = 'model'
    WHERE id = :chat_id!::uuid AND title_source = 'first_words' AND :title::text IS NOT NULL
    RETURNING id, title
), spend AS (
    SELECT c.id AS chat_id, c.owner_id AS user_id, (now() AT TIME ZONE 'UTC')::date AS day
    FROM chats c
    WHERE c.id = :chat_id!::uuid
), daily AS (
    INSERT INTO usage_daily AS l (user_id, day, model_config_id, input_tokens, output_tokens, reasoning_tokens, cache_read_tokens, cache_creation_tokens, cost_micros)
    SELECT s.user_id, s.day, :model_config_id!::uuid, :input_tokens!::bigint, :output_tokens!::bigint, :reasoning_tokens!::bigint,
        :cache_read_tokens!::bigint, :cache_creation_tokens!::bigint, COALESCE(:cost_micros::bigint, 0)
    FROM spend s
    ON CONFLICT (user_id, day, model_config_id) DO UPDATE SET
        input_tokens = l.input_tokens + excluded.input_tokens,
        output_tokens = l.output_tokens + excluded.output_tokens,
        reasoning_tokens = l.reasoning_tokens + excluded.reasoning_tokens,
        cache_read_tokens = l.cache_read_tokens + excluded.cache_read_tokens,
        cache_creation_tokens = l.cache_creation_tokens + excluded.cache_creation_tokens,
        cost_micros = l.cost_micros + excluded.cost_micros
), by_chat AS (
    INSERT INTO usage_by_chat AS l (chat_id, day, user_id, input_tokens, output_tokens, reasoning_tokens, cache_read_tokens, cache_creation_tokens, cost_micros)
    SELECT s.chat_id, s.day, s.user_id, :input_tokens!::bigint, :output_tokens!::bigint, :reasoning_tokens!::bigint,
        :cache_read_tokens!::bigint, :cache_creation_tokens!::bigint, COALESCE(:cost_micros::bigint, 0)
    FROM spend s
    ON CONFLICT (chat_id, day) DO UPDATE SET
        input_tokens = l.input_tokens + excluded.input_tokens,
        output_tokens = l.output_tokens + excluded.output_tokens,
        reasoning_tokens = l.reasoning_tokens + excluded.reasoning_tokens,
        cache_read_tokens = l.cache_read_tokens + excluded.cache_read_tokens,
        cache_creation_tokens = l.cache_creation_tokens + excluded.cache_creation_tokens,
        cost_micros = l.cost_micros + excluded.cost_micros
)
SELECT (SELECT title FROM titled) AS title, (SELECT day FROM spend)::text AS day;

/* @name ForkChat */
-- A fork, in one statement (one transaction): a new chat of :owner_id's, waiting, holding copies of the source chat's
-- live messages up to :message_id (inclusive, in id order: ids are assigned in the SELECT's order), with its origin
-- recorded. Nothing when the message is not a live message of the source chat. A 1,000-message fork is this one
-- INSERT … SELECT over the (chat_id, id) index, not 1,000 round trips. Usage columns are copied for display; the
-- ledger is not (nothing was spent again).
-- Files (issue 26): a fork shares its messages' files, it never copies their bytes. When the files tables land, link
-- the copied messages to the same file rows here, in this statement (an `INSERT … SELECT` from the source messages'
-- links joined to `copied` by their position), so the fork's files are readable by the fork's owner.
WITH source AS (
    SELECT c.*
    FROM chats c
    WHERE c.id = :source_id!::uuid
        AND EXISTS (
            SELECT 1 FROM chat_messages m
            WHERE m.chat_id = c.id AND m.id = :message_id!::bigint AND m.deleted = FALSE
        )
), chat AS (
    INSERT INTO chats (id, owner_id, title, title_source, status, last_model_config_id, forked_from_chat_id, forked_from_message_id)
    SELECT :id!::uuid, :owner_id!::uuid, s.title, s.title_source, 'waiting', s.last_model_config_id, s.id, :message_id!::bigint
    FROM source s
    RETURNING *
), copied AS (
    INSERT INTO chat_messages (
        chat_id, role, content, model_config_id, created_by, created_at,
        input_tokens, output_tokens, total_tokens, reasoning_tokens, cache_read_tokens, cache_creation_tokens, cost_micros
    )
    SELECT
        c.id, m.role, m.content, m.model_config_id, m.created_by, m.created_at,
        m.input_tokens, m.output_tokens, m.total_tokens, m.reasoning_tokens, m.cache_read_tokens, m.cache_creation_tokens,
        m.cost_micros
    FROM chat c
    JOIN chat_messages m ON m.chat_id = :source_id!::uuid
    WHERE m.id <= :message_id!::bigint AND m.deleted = FALSE
    ORDER BY m.id
    RETURNING id
)
SELECT to_jsonb(c.*) AS chat, (SELECT count(*) FROM copied)::int AS copied
FROM chat c;

/* @name ImportChat */
-- An imported chat, in one statement: the chat (the caller's, waiting, its title the owner's) and its messages
-- (parallel arrays, in order; user messages are the importer's, the others nobody's). Message model configs are not
-- imported (they are another deployment's); the chat's next turn runs on the default config. A taken id inserts nothing.
WITH chat AS (
    INSERT INTO chats (id, owner_id, title, title_source, status, labels)
    VALUES (:id!::uuid, :owner_id!::uuid, :title!::text, 'owner', 'waiting', :labels!::jsonb)
    ON CONFLICT (id) DO NOTHING
    RETURNING *
), inserted AS (
    INSERT INTO chat_messages (chat_id, role, content, created_by, created_at)
    SELECT c.id, m.role, m.content, CASE WHEN m.role = 'user' THEN c.owner_id END, m.created_at
    FROM chat c, unnest(:roles!::chat_message_role[], :contents!::jsonb[], :created_ats!::timestamptz[])
        WITH ORDINALITY AS m (role, content, created_at, ord)
    ORDER BY m.ord
    RETURNING id
)
SELECT to_jsonb(c.*) AS chat, (SELECT count(*) FROM inserted)::int AS messages
FROM chat c;
