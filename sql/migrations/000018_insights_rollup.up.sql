-- The insights rollup: chat_turns summed per complete UTC day and (model_config_id, provider, model, user_id), so
-- GET /insights reads a few rows per day instead of sorting every call of the window. Written only by the cron
-- (RollupTurnDays), never on the turn's path: InsertChatMessages is unchanged.
--
-- Latency histograms: fixed log-scale buckets, 8 per doubling. Bucket 0 holds [0, 1) ms; bucket b >= 1 holds
-- [2^((b-1)/8), 2^(b/8)) ms; bucket 193 (from 2^24 ms, 4.7 h) is open-ended. A histogram is an int[] whose subscript
-- is the bucket number, trimmed to its first and last non-empty bucket (so its lower bound is the first bucket's
-- number: '[61:63]={2,0,1}'); NULL when no call of the row had the figure (first_token_ms of calls without a token).
-- p50/p95 are interpolated inside the bucket (geometrically): at most 2^(1/8) - 1 = 9.05% from the order statistic.
CREATE TABLE chat_turns_daily (
    day date NOT NULL,
    model_config_id uuid,
    provider text NOT NULL,
    model text NOT NULL,
    user_id uuid NOT NULL,
    turns integer NOT NULL,
    -- {"kind": calls} of the calls that failed (kind 'unknown' when the call had none).
    errors jsonb NOT NULL DEFAULT '{}'::jsonb,
    input_tokens bigint NOT NULL,
    output_tokens bigint NOT NULL,
    cost_micros bigint NOT NULL,
    first_token_hist integer[],
    total_hist integer[] NOT NULL
);
CREATE INDEX chat_turns_daily_day ON chat_turns_daily (day);

-- The days rolled up (a day without calls too): the insights read chat_turns raw for every other day. The cron's
-- statement marks a day and writes its rows at once, and only for days it marked itself, so two runs never double.
CREATE TABLE chat_turns_rollup_days (
    day date PRIMARY KEY,
    rolled_up_at timestamptz NOT NULL DEFAULT now()
);

-- A latency's bucket (see above); the rollup and the insights' raw part bucket with this same expression.
CREATE FUNCTION insights_bucket(ms integer) RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE WHEN ms < 1 THEN 0 ELSE least(193, 1 + floor(log(ms::float8) * 8 / log(2::float8))::integer) END;
