/* @name GetSpendState */
-- Everything a user's spend meter needs, in one round trip: the deployment default limit (site_configs JSON), the
-- user's own limit when set, and what the ledger holds for the current day and month (:day_start, :month_start:
-- UTC dates). No upper bound on the day, so a write dated a little ahead of the meter's clock still counts.
SELECT
    (SELECT value FROM site_configs WHERE key = 'spend_limit') AS default_limit,
    o.period AS override_period,
    o.amount_micros::text AS override_amount_micros,
    (
        SELECT COALESCE(sum(cost_micros), 0)::text FROM usage_daily
        WHERE user_id = :user_id!::uuid AND day >= :day_start!::date
    ) AS "spent_day!",
    (
        SELECT COALESCE(sum(cost_micros), 0)::text FROM usage_daily
        WHERE user_id = :user_id!::uuid AND day >= :month_start!::date
    ) AS "spent_month!"
FROM (SELECT 1) AS one
LEFT JOIN user_spend_limits o ON o.user_id = :user_id!::uuid;

/* @name UpsertUserSpendLimit */
-- An owner sets one user's limit; only for an existing user (nothing returned otherwise).
INSERT INTO user_spend_limits (user_id, period, amount_micros, updated_by)
SELECT u.id, :period!::text, :amount_micros!::bigint, :updated_by::uuid
FROM users u WHERE u.id = :user_id!::uuid
ON CONFLICT (user_id) DO UPDATE
SET period = excluded.period, amount_micros = excluded.amount_micros, updated_by = excluded.updated_by, updated_at = now()
RETURNING period, amount_micros::text AS amount_micros;

/* @name DeleteUserSpendLimit */
-- Clears one user's own limit (they fall back to the deployment default); answers the user when they exist.
WITH gone AS (
    DELETE FROM user_spend_limits WHERE user_id = :user_id!::uuid RETURNING user_id
)
SELECT u.id FROM users u WHERE u.id = :user_id!::uuid;

/* @name GetUsageByDay */
-- The reports (this one and the three below) read the ledger over whole UTC days, :from to :to inclusive, for one
-- user or (:user_id NULL) for everyone; sums come back as text (bigint sums are numeric) and are parsed exactly.
-- By day, model and user they read usage_daily (a row per user, day and model); by chat, usage_by_chat.
SELECT
    day::text AS "day!",
    sum(turns)::text AS "turns!",
    sum(unpriced_turns)::text AS "unpriced_turns!",
    sum(input_tokens)::text AS "input_tokens!",
    sum(output_tokens)::text AS "output_tokens!",
    sum(reasoning_tokens)::text AS "reasoning_tokens!",
    sum(cache_read_tokens)::text AS "cache_read_tokens!",
    sum(cache_creation_tokens)::text AS "cache_creation_tokens!",
    sum(cost_micros)::text AS "cost_micros!"
FROM usage_daily
WHERE (:user_id::uuid IS NULL OR user_id = :user_id::uuid) AND day BETWEEN :from!::date AND :to!::date
GROUP BY day
ORDER BY day;

/* @name GetUsageByModel */
-- Soft-deleted configs still name their model.
SELECT
    g.model_config_id AS "model_config_id!",
    m.provider,
    m.model,
    m.display_name,
    g.turns AS "turns!",
    g.unpriced_turns AS "unpriced_turns!",
    g.input_tokens AS "input_tokens!",
    g.output_tokens AS "output_tokens!",
    g.reasoning_tokens AS "reasoning_tokens!",
    g.cache_read_tokens AS "cache_read_tokens!",
    g.cache_creation_tokens AS "cache_creation_tokens!",
    g.cost_micros AS "cost_micros!"
FROM (
    SELECT
        model_config_id,
        sum(turns)::text AS turns,
        sum(unpriced_turns)::text AS unpriced_turns,
        sum(input_tokens)::text AS input_tokens,
        sum(output_tokens)::text AS output_tokens,
        sum(reasoning_tokens)::text AS reasoning_tokens,
        sum(cache_read_tokens)::text AS cache_read_tokens,
        sum(cache_creation_tokens)::text AS cache_creation_tokens,
        sum(cost_micros) AS cost,
        sum(cost_micros)::text AS cost_micros
    FROM usage_daily
    WHERE (:user_id::uuid IS NULL OR user_id = :user_id::uuid) AND day BETWEEN :from!::date AND :to!::date
    GROUP BY model_config_id
) g
LEFT JOIN chat_model_configs m ON m.id = g.model_config_id
ORDER BY g.cost DESC, m.provider, m.model, g.model_config_id;

/* @name GetUsageByChat */
-- A chat deleted since (by its owner, or by retention) keeps its totals; its title is then NULL.
SELECT
    g.chat_id AS "chat_id!",
    g.user_id AS "user_id!",
    c.title,
    g.turns AS "turns!",
    g.unpriced_turns AS "unpriced_turns!",
    g.input_tokens AS "input_tokens!",
    g.output_tokens AS "output_tokens!",
    g.reasoning_tokens AS "reasoning_tokens!",
    g.cache_read_tokens AS "cache_read_tokens!",
    g.cache_creation_tokens AS "cache_creation_tokens!",
    g.cost_micros AS "cost_micros!"
FROM (
    SELECT
        chat_id,
        user_id,
        sum(turns)::text AS turns,
        sum(unpriced_turns)::text AS unpriced_turns,
        sum(input_tokens)::text AS input_tokens,
        sum(output_tokens)::text AS output_tokens,
        sum(reasoning_tokens)::text AS reasoning_tokens,
        sum(cache_read_tokens)::text AS cache_read_tokens,
        sum(cache_creation_tokens)::text AS cache_creation_tokens,
        sum(cost_micros) AS cost,
        sum(cost_micros)::text AS cost_micros
    FROM usage_by_chat
    WHERE (:user_id::uuid IS NULL OR user_id = :user_id::uuid) AND day BETWEEN :from!::date AND :to!::date
    GROUP BY chat_id, user_id
) g
LEFT JOIN chats c ON c.id = g.chat_id
ORDER BY g.cost DESC, g.chat_id;

/* @name GetUsageByUser */
SELECT
    g.user_id AS "user_id!",
    u.username,
    u.email,
    g.turns AS "turns!",
    g.unpriced_turns AS "unpriced_turns!",
    g.input_tokens AS "input_tokens!",
    g.output_tokens AS "output_tokens!",
    g.reasoning_tokens AS "reasoning_tokens!",
    g.cache_read_tokens AS "cache_read_tokens!",
    g.cache_creation_tokens AS "cache_creation_tokens!",
    g.cost_micros AS "cost_micros!"
FROM (
    SELECT
        user_id,
        sum(turns)::text AS turns,
        sum(unpriced_turns)::text AS unpriced_turns,
        sum(input_tokens)::text AS input_tokens,
        sum(output_tokens)::text AS output_tokens,
        sum(reasoning_tokens)::text AS reasoning_tokens,
        sum(cache_read_tokens)::text AS cache_read_tokens,
        sum(cache_creation_tokens)::text AS cache_creation_tokens,
        sum(cost_micros) AS cost,
        sum(cost_micros)::text AS cost_micros
    FROM usage_daily
    WHERE (:user_id::uuid IS NULL OR user_id = :user_id::uuid) AND day BETWEEN :from!::date AND :to!::date
    GROUP BY user_id
) g
LEFT JOIN users u ON u.id = g.user_id
ORDER BY g.cost DESC, u.username, g.user_id;
