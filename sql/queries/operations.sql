/* @name GetInsights */
-- Owners' insights over the model calls in [from, to): per group key (the model as called, the provider, the UTC day
-- YYYY-MM-DD, or the chat owner's id) the calls, the errors by kind, p50/p95 of first token (calls that streamed a
-- token) and total, tokens and cost. Days rolled up by the cron (chat_turns_rollup_days) and wholly inside the window
-- are read from chat_turns_daily; every other part of the window (today, the window's partial edge days, days not
-- rolled up yet) from chat_turns. Sums add; the latency histograms add (numbers, one sum() per key: migration
-- 000021), and p50/p95 are interpolated from them (within 9.05% of the order statistic, see docs/performance.md). A
-- key with no rolled-up call gets the exact percentile_cont of its raw calls.
WITH rolled AS (
    SELECT day
    FROM chat_turns_rollup_days
    WHERE day >= (:from!::timestamptz AT TIME ZONE 'UTC')::date
        AND day < (:to!::timestamptz AT TIME ZONE 'UTC')::date
        AND day::timestamp AT TIME ZONE 'UTC' >= :from!::timestamptz
        AND (day + 1)::timestamp AT TIME ZONE 'UTC' <= :to!::timestamptz
), segs AS (
    SELECT
        greatest(d AT TIME ZONE 'UTC', :from!::timestamptz) AS lo,
        least((d + interval '1 day') AT TIME ZONE 'UTC', :to!::timestamptz) AS hi
    FROM generate_series(
        (:from!::timestamptz AT TIME ZONE 'UTC')::date::timestamp,
        (:to!::timestamptz AT TIME ZONE 'UTC')::date::timestamp,
        interval '1 day'
    ) d
    WHERE NOT EXISTS (SELECT 1 FROM rolled WHERE rolled.day = d::date)
), raw AS (
    SELECT
        CASE :group_by!::text
            WHEN 'model' THEN t.model
            WHEN 'provider' THEN t.provider
            WHEN 'day' THEN to_char(t.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD')
            ELSE t.user_id::text
        END AS key,
        t.outcome, t.error_kind, t.first_token_ms, t.total_ms, t.input_tokens, t.output_tokens, t.cost_micros
    FROM segs
    JOIN chat_turns t ON t.created_at >= segs.lo AND t.created_at < segs.hi
), roll AS (
    SELECT
        CASE :group_by!::text
            WHEN 'model' THEN d.model
            WHEN 'provider' THEN d.provider
            WHEN 'day' THEN to_char(d.day, 'YYYY-MM-DD')
            ELSE d.user_id::text
        END AS key,
        d.turns, d.errors, d.first_token_hist, d.total_hist, d.input_tokens, d.output_tokens, d.cost_micros
    FROM chat_turns_daily d
    JOIN rolled ON rolled.day = d.day
    WHERE d.day >= (:from!::timestamptz AT TIME ZONE 'UTC')::date AND d.day < (:to!::timestamptz AT TIME ZONE 'UTC')::date
), rsum AS (
    -- Per key, the rolled-up rows added up, histograms too (a histogram is a number whose digits are its buckets).
    SELECT
        key,
        sum(turns) AS turns,
        sum(input_tokens) AS input_tokens,
        sum(output_tokens) AS output_tokens,
        sum(cost_micros) AS cost_micros,
        sum(first_token_hist) AS first_token_hist,
        sum(total_hist) AS total_hist
    FROM roll
    GROUP BY key
), g AS (
    SELECT
        key,
        sum(turns) AS turns,
        sum(rolled_turns) AS rolled_turns,
        sum(input_tokens) AS input_tokens,
        sum(output_tokens) AS output_tokens,
        sum(cost_micros) AS cost_micros
    FROM (
        SELECT key, 1 AS turns, 0 AS rolled_turns, input_tokens, output_tokens, COALESCE(cost_micros, 0) AS cost_micros FROM raw
        UNION ALL
        SELECT key, turns, turns, input_tokens, output_tokens, cost_micros FROM rsum
    ) u
    GROUP BY key
), exact AS (
    SELECT
        key,
        percentile_cont(0.5) WITHIN GROUP (ORDER BY first_token_ms) AS first_token_p50,
        percentile_cont(0.95) WITHIN GROUP (ORDER BY first_token_ms) AS first_token_p95,
        percentile_cont(0.5) WITHIN GROUP (ORDER BY total_ms) AS total_p50,
        percentile_cont(0.95) WITHIN GROUP (ORDER BY total_ms) AS total_p95
    FROM raw
    WHERE key IN (SELECT key FROM g WHERE rolled_turns = 0)
    GROUP BY key
), e AS (
    SELECT key, jsonb_object_agg(kind, n) AS errors
    FROM (
        SELECT key, kind, sum(n) AS n
        FROM (
            SELECT key, COALESCE(error_kind, 'unknown') AS kind, 1 AS n FROM raw WHERE outcome = 'error'
            UNION ALL
            SELECT roll.key, k.key, k.value::int FROM roll, jsonb_each_text(roll.errors) k
        ) x
        GROUP BY key, kind
    ) k
    GROUP BY key
), hist AS (
    -- (key, latency f(irst token) or t(otal), bucket, calls) of the keys with rolled-up calls (the others get exact).
    -- Counts in float8 from here on (exact below 2^53): numeric arithmetic on every bucket cost a good part of it.
    SELECT key, m, b, sum(n)::float8 AS n
    FROM (
        SELECT key, 'f' AS m, insights_bucket(first_token_ms) AS b, 1 AS n FROM raw
        WHERE first_token_ms IS NOT NULL AND key IN (SELECT key FROM rsum)
        UNION ALL
        SELECT key, 't', insights_bucket(total_ms), 1 FROM raw WHERE key IN (SELECT key FROM rsum)
        UNION ALL
        SELECT r.key, 'f', h.bucket, h.calls FROM rsum r, insights_hist_buckets(r.first_token_hist) h WHERE h.calls > 0
        UNION ALL
        SELECT r.key, 't', h.bucket, h.calls FROM rsum r, insights_hist_buckets(r.total_hist) h WHERE h.calls > 0
    ) x
    GROUP BY key, m, b
), cum AS (
    SELECT key, m, b, n, sum(n) OVER w - n AS before, sum(n) OVER (PARTITION BY key, m) AS total
    FROM hist
    WINDOW w AS (PARTITION BY key, m ORDER BY b)
), pct AS (
    -- percentile_cont's position p * (calls - 1) (in float8, as percentile_cont computes it) falls in one bucket:
    -- spread its calls evenly (on the log scale).
    SELECT key, m, p, b, least(1.0, greatest(0.0, (p * (total - 1) - before + 0.5) / n)) AS f
    FROM cum, (VALUES (0.5::float8), (0.95::float8)) ps (p)
    WHERE before <= p * (total - 1) AND p * (total - 1) < before + n
), approx AS (
    SELECT
        key,
        max(v) FILTER (WHERE m = 'f' AND p = 0.5) AS first_token_p50,
        max(v) FILTER (WHERE m = 'f' AND p = 0.95) AS first_token_p95,
        max(v) FILTER (WHERE m = 't' AND p = 0.5) AS total_p50,
        max(v) FILTER (WHERE m = 't' AND p = 0.95) AS total_p95
    FROM (SELECT key, m, p, CASE WHEN b = 0 THEN f ELSE power(2::float8, (b - 1 + f) / 8) END AS v FROM pct) v
    GROUP BY key
)
SELECT
    g.key AS "key!",
    g.turns AS "turns!",
    COALESCE(e.errors, '{}'::jsonb) AS "errors!",
    COALESCE(x.first_token_p50, a.first_token_p50) AS first_token_p50,
    COALESCE(x.first_token_p95, a.first_token_p95) AS first_token_p95,
    COALESCE(x.total_p50, a.total_p50) AS "total_p50!",
    COALESCE(x.total_p95, a.total_p95) AS "total_p95!",
    g.input_tokens AS "input_tokens!",
    g.output_tokens AS "output_tokens!",
    g.cost_micros AS "cost_micros!"
FROM g
LEFT JOIN e ON e.key = g.key
LEFT JOIN exact x ON x.key = g.key
LEFT JOIN approx a ON a.key = g.key
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

/* @name RollupTurnDays */
-- The cron's rollup: up to :batch complete UTC days (ended at least 10 minutes before :now) not rolled up yet, from
-- the oldest call's day, oldest first. Marks each day and writes its chat_turns_daily rows in this one statement, only
-- for the days it marked itself (ON CONFLICT DO NOTHING): run twice, or twice at once, it writes each day once.
-- Returns the days it rolled up.
WITH todo AS (
    SELECT d::date AS day
    FROM generate_series(
        (SELECT (min(created_at) AT TIME ZONE 'UTC')::date FROM chat_turns)::timestamp,
        (((:now!::timestamptz - interval '10 minutes') AT TIME ZONE 'UTC')::date - 1)::timestamp,
        interval '1 day'
    ) d
    WHERE NOT EXISTS (SELECT 1 FROM chat_turns_rollup_days r WHERE r.day = d::date)
    ORDER BY 1
    LIMIT :batch!::int
), marked AS (
    INSERT INTO chat_turns_rollup_days (day)
    SELECT day FROM todo
    ON CONFLICT (day) DO NOTHING
    RETURNING day
), g AS (
    SELECT
        m.day, t.model_config_id, t.provider, t.model, t.user_id,
        count(*) AS turns,
        array_agg(COALESCE(t.error_kind, 'unknown')) FILTER (WHERE t.outcome = 'error') AS kinds,
        COALESCE(sum(t.input_tokens), 0) AS input_tokens,
        COALESCE(sum(t.output_tokens), 0) AS output_tokens,
        COALESCE(sum(t.cost_micros), 0) AS cost_micros,
        array_agg(insights_bucket(t.first_token_ms)) FILTER (WHERE t.first_token_ms IS NOT NULL) AS fb,
        array_agg(insights_bucket(t.total_ms)) AS tb
    FROM marked m
    JOIN chat_turns t
        ON t.created_at >= (m.day::timestamp AT TIME ZONE 'UTC') AND t.created_at < ((m.day + 1)::timestamp AT TIME ZONE 'UTC')
    GROUP BY m.day, t.model_config_id, t.provider, t.model, t.user_id
), rows AS (
    INSERT INTO chat_turns_daily (
        day, model_config_id, provider, model, user_id, turns, errors, input_tokens, output_tokens, cost_micros,
        first_token_hist, total_hist
    )
    SELECT
        g.day, g.model_config_id, g.provider, g.model, g.user_id, g.turns,
        COALESCE((SELECT jsonb_object_agg(k, n) FROM (SELECT k, count(*) AS n FROM unnest(g.kinds) k GROUP BY k) e), '{}'::jsonb),
        g.input_tokens, g.output_tokens, g.cost_micros,
        -- A histogram as the number sum(calls * 10^(12 * bucket)) (migration 000021), written as its digits: 12 a
        -- bucket from the last non-empty one down to the first, then 12 zeros for each bucket below. NULL: no call.
        (SELECT (string_agg(lpad(COALESCE(c.n, 0)::text, 12, '0'), '' ORDER BY s DESC) || repeat('0', 12 * min(s)))::numeric
         FROM generate_series((SELECT min(x) FROM unnest(g.fb) x), (SELECT max(x) FROM unnest(g.fb) x)) s
         LEFT JOIN (SELECT x, count(*) AS n FROM unnest(g.fb) x GROUP BY x) c ON c.x = s),
        (SELECT (string_agg(lpad(COALESCE(c.n, 0)::text, 12, '0'), '' ORDER BY s DESC) || repeat('0', 12 * min(s)))::numeric
         FROM generate_series((SELECT min(x) FROM unnest(g.tb) x), (SELECT max(x) FROM unnest(g.tb) x)) s
         LEFT JOIN (SELECT x, count(*) AS n FROM unnest(g.tb) x GROUP BY x) c ON c.x = s)
    FROM g
    RETURNING day
)
SELECT m.day::text AS "day!", (SELECT count(*) FROM rows WHERE rows.day = m.day) AS "rows!"
FROM marked m
ORDER BY m.day;

/* @name PurgeTurnRollup */
-- The rollup follows chat_turns' retention (its rows go with their chat): a day before the oldest call still stored
-- is dropped, markers and rows (with no call left at all, every day). Returns the days dropped.
WITH oldest AS (
    SELECT (min(created_at) AT TIME ZONE 'UTC')::date AS day FROM chat_turns
), gone_rows AS (
    DELETE FROM chat_turns_daily d
    USING oldest
    WHERE oldest.day IS NULL OR d.day < oldest.day
    RETURNING d.day
)
DELETE FROM chat_turns_rollup_days r
USING oldest
WHERE oldest.day IS NULL OR r.day < oldest.day
RETURNING r.day::text AS "day!";
