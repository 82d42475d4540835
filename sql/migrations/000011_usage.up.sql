-- Usage, cost and spend limits.

-- A model config's prices: {input_per_mtok, output_per_mtok, cache_read_per_mtok?, cache_write_per_mtok?,
-- reasoning_per_mtok?}, decimal strings in the deployment's currency per million tokens. NULL: unpriced (its turns
-- are counted in tokens only).
ALTER TABLE chat_model_configs ADD COLUMN pricing jsonb;
ALTER TABLE chat_model_configs ADD CONSTRAINT chat_model_configs_pricing_object
    CHECK (pricing IS NULL OR jsonb_typeof(pricing) = 'object');

-- An assistant message's cost in micro-units (0.000001) of the currency, computed once, when the turn that wrote it
-- ended, with the prices it ran on (never recomputed). NULL: not priced (the model had no pricing, or the provider
-- reported no usage).
ALTER TABLE chat_messages ADD COLUMN cost_micros bigint;

-- The ledger, in two tables fed by InsertChatMessages in the statement that writes the answer, from the rows it actually
-- inserted (so an answer written twice, an outbox retry, is counted once). Both outlive the chats they count (no
-- foreign key to chats): retention purges messages, the totals stay.
--   usage_daily: per user, UTC day and model config. What limits and every report but the one by chat read: small
--   (users x days x models), so a month across the deployment is a short range.
--   usage_by_chat: per chat and UTC day (with its owner), for the report by chat.
-- Counters per group: answers, those without a cost (unpriced model, or no usage reported: counted as zero), tokens,
-- and the cost in micro-units. Room left on each page (fillfactor) so the per-answer increments, which change no
-- indexed column, stay heap-only updates.
CREATE TABLE usage_daily (
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    day date NOT NULL,
    model_config_id uuid NOT NULL REFERENCES chat_model_configs (id),
    turns integer NOT NULL DEFAULT 0,
    unpriced_turns integer NOT NULL DEFAULT 0,
    input_tokens bigint NOT NULL DEFAULT 0,
    output_tokens bigint NOT NULL DEFAULT 0,
    reasoning_tokens bigint NOT NULL DEFAULT 0,
    cache_read_tokens bigint NOT NULL DEFAULT 0,
    cache_creation_tokens bigint NOT NULL DEFAULT 0,
    cost_micros bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (user_id, day, model_config_id)
) WITH (fillfactor = 80);
-- Deployment-wide reports read a range of days across users; one user's (and their meter) the key's prefix.
CREATE INDEX usage_daily_day ON usage_daily (day);

CREATE TABLE usage_by_chat (
    chat_id uuid NOT NULL,
    day date NOT NULL,
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    turns integer NOT NULL DEFAULT 0,
    unpriced_turns integer NOT NULL DEFAULT 0,
    input_tokens bigint NOT NULL DEFAULT 0,
    output_tokens bigint NOT NULL DEFAULT 0,
    reasoning_tokens bigint NOT NULL DEFAULT 0,
    cache_read_tokens bigint NOT NULL DEFAULT 0,
    cache_creation_tokens bigint NOT NULL DEFAULT 0,
    cost_micros bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (chat_id, day)
) WITH (fillfactor = 80);
CREATE INDEX usage_by_chat_user_day ON usage_by_chat (user_id, day);
CREATE INDEX usage_by_chat_day ON usage_by_chat (day);

-- What was answered before the ledger existed, as unpriced turns (no message had a cost yet): one pass over the
-- answers, summed per user, day, model and chat, then into both tables.
WITH backfill AS (
    SELECT
        c.owner_id AS user_id,
        (m.created_at AT TIME ZONE 'UTC')::date AS day,
        m.model_config_id,
        m.chat_id,
        count(*) AS turns,
        COALESCE(sum(m.input_tokens), 0) AS input_tokens,
        COALESCE(sum(m.output_tokens), 0) AS output_tokens,
        COALESCE(sum(m.reasoning_tokens), 0) AS reasoning_tokens,
        COALESCE(sum(m.cache_read_tokens), 0) AS cache_read_tokens,
        COALESCE(sum(m.cache_creation_tokens), 0) AS cache_creation_tokens
    FROM chat_messages m
    JOIN chats c ON c.id = m.chat_id
    WHERE m.role = 'assistant' AND m.model_config_id IS NOT NULL
    GROUP BY 1, 2, 3, 4
), daily AS (
    INSERT INTO usage_daily (
        user_id, day, model_config_id, turns, unpriced_turns,
        input_tokens, output_tokens, reasoning_tokens, cache_read_tokens, cache_creation_tokens
    )
    SELECT user_id, day, model_config_id, sum(turns), sum(turns), sum(input_tokens), sum(output_tokens),
        sum(reasoning_tokens), sum(cache_read_tokens), sum(cache_creation_tokens)
    FROM backfill
    GROUP BY 1, 2, 3
)
INSERT INTO usage_by_chat (
    chat_id, day, user_id, turns, unpriced_turns,
    input_tokens, output_tokens, reasoning_tokens, cache_read_tokens, cache_creation_tokens
)
SELECT chat_id, day, user_id, sum(turns), sum(turns), sum(input_tokens), sum(output_tokens),
    sum(reasoning_tokens), sum(cache_read_tokens), sum(cache_creation_tokens)
FROM backfill
GROUP BY 1, 2, 3;

-- A user's own spend limit, overriding the deployment default (site_configs 'spend_limit'). Amount in micro-units.
CREATE TABLE user_spend_limits (
    user_id uuid PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    period text NOT NULL,
    amount_micros bigint NOT NULL,
    updated_by uuid REFERENCES users (id) ON DELETE SET NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT user_spend_limits_period CHECK (period IN ('day', 'month')),
    CONSTRAINT user_spend_limits_amount CHECK (amount_micros >= 0)
);
