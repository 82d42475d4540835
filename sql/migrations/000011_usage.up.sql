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

-- The ledger: what each user's model answers used and cost, per UTC day, model config and chat. InsertChatMessages
-- adds to it in the statement that writes the answer, from the rows it actually inserted, so an answer written twice
-- (an outbox retry) is counted once. No foreign key to chats: the totals outlive a chat deleted by its owner or by
-- retention. Keyed by chat so that one user's concurrent turns in different chats never wait on one row.
CREATE TABLE usage_ledger (
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    day date NOT NULL,
    model_config_id uuid NOT NULL REFERENCES chat_model_configs (id),
    chat_id uuid NOT NULL,
    -- Answers, and those without a cost (unpriced model, or no usage reported: counted as zero).
    turns integer NOT NULL DEFAULT 0,
    unpriced_turns integer NOT NULL DEFAULT 0,
    input_tokens bigint NOT NULL DEFAULT 0,
    output_tokens bigint NOT NULL DEFAULT 0,
    reasoning_tokens bigint NOT NULL DEFAULT 0,
    cache_read_tokens bigint NOT NULL DEFAULT 0,
    cache_creation_tokens bigint NOT NULL DEFAULT 0,
    cost_micros bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (user_id, day, model_config_id, chat_id)
) WITH (fillfactor = 80);
-- Room on each page, so the per-answer increments (no indexed column changes) stay heap-only updates.

-- Deployment-wide reports (GET /usage) read a date range across users; per-user reads and the spend meter use the
-- primary key's (user_id, day) prefix.
CREATE INDEX usage_ledger_day ON usage_ledger (day);

-- What was answered before the ledger existed, as unpriced turns (no message had a cost yet).
INSERT INTO usage_ledger (
    user_id, day, model_config_id, chat_id, turns, unpriced_turns,
    input_tokens, output_tokens, reasoning_tokens, cache_read_tokens, cache_creation_tokens
)
SELECT
    c.owner_id,
    (m.created_at AT TIME ZONE 'UTC')::date,
    m.model_config_id,
    m.chat_id,
    count(*),
    count(*),
    COALESCE(sum(m.input_tokens), 0),
    COALESCE(sum(m.output_tokens), 0),
    COALESCE(sum(m.reasoning_tokens), 0),
    COALESCE(sum(m.cache_read_tokens), 0),
    COALESCE(sum(m.cache_creation_tokens), 0)
FROM chat_messages m
JOIN chats c ON c.id = m.chat_id
WHERE m.role = 'assistant' AND m.model_config_id IS NOT NULL
GROUP BY 1, 2, 3, 4;

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
