/* @name GetInsights */
-- Owners' insights over chat_turns (one row per model call) in [from, to): per group key (the model as called, the
-- provider, the UTC day YYYY-MM-DD, or the chat owner's id) the calls, the errors by kind, p50/p95 of first token
-- (calls that streamed a token) and total, tokens and cost. The window is one range of chat_turns_created_at.
WITH t AS (
    SELECT
        CASE :group_by!::text
            WHEN 'model' THEN model
            WHEN 'provider' THEN provider
            WHEN 'day' THEN to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD')
            ELSE user_id::text
        END AS key,
        outcome, error_kind, first_token_ms, total_ms, input_tokens, output_tokens, cost_micros
    FROM chat_turns
    WHERE created_at >= :from!::timestamptz AND created_at < :to!::timestamptz
), g AS (
    SELECT
        key,
        count(*) AS turns,
        percentile_cont(0.5) WITHIN GROUP (ORDER BY first_token_ms) AS first_token_p50,
        percentile_cont(0.95) WITHIN GROUP (ORDER BY first_token_ms) AS first_token_p95,
        percentile_cont(0.5) WITHIN GROUP (ORDER BY total_ms) AS total_p50,
        percentile_cont(0.95) WITHIN GROUP (ORDER BY total_ms) AS total_p95,
        COALESCE(sum(input_tokens), 0) AS input_tokens,
        COALESCE(sum(output_tokens), 0) AS output_tokens,
        COALESCE(sum(cost_micros), 0) AS cost_micros
    FROM t
    GROUP BY key
), e AS (
    SELECT key, jsonb_object_agg(kind, n) AS errors
    FROM (
        SELECT key, COALESCE(error_kind, 'unknown') AS kind, count(*) AS n
        FROM t
        WHERE outcome = 'error'
        GROUP BY key, COALESCE(error_kind, 'unknown')
    ) k
    GROUP BY key
)
SELECT
    g.key AS "key!",
    g.turns AS "turns!",
    COALESCE(e.errors, '{}'::jsonb) AS "errors!",
    g.first_token_p50,
    g.first_token_p95,
    g.total_p50 AS "total_p50!",
    g.total_p95 AS "total_p95!",
    g.input_tokens AS "input_tokens!",
    g.output_tokens AS "output_tokens!",
    g.cost_micros AS "cost_micros!"
FROM g
LEFT JOIN e ON e.key = g.key
ORDER BY g.key;

/* @name GetChatDebugRuns */
-- A chat's debug runs, newest first, at most :limit.
SELECT id, model_config_id, started_at, request, response, attempts, timings
FROM chat_debug_runs
WHERE chat_id = :chat_id!::uuid
ORDER BY started_at DESC, id
LIMIT :limit!::int;

/* @name ChatExists */
SELECT EXISTS (SELECT 1 FROM chats WHERE id = :chat_id!::uuid) AS "exists!";

/* @name PurgeDebugRuns */
-- Retention of debug runs: those stored before the cutoff, in bounded batches (the cron runs it until done).
DELETE FROM chat_debug_runs
WHERE id IN (
    SELECT id FROM chat_debug_runs
    WHERE created_at < :cutoff!::timestamptz
    ORDER BY created_at
    LIMIT :batch!::int
)
RETURNING id;
