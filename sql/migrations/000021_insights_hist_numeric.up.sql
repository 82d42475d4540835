-- The insights rollup's latency histograms as numbers, so GET /insights adds them with one sum() per key instead of
-- unnesting every bucket of every row (docs/performance.md "Insights").
--
-- 000018 stored a histogram as an int[] subscripted by bucket number. Adding them meant one row per non-empty bucket
-- per rollup row: a 30-day window grouped by user (6,000 rollup rows of ~14 calls) unnested ~155,000 (key, bucket,
-- calls) rows and hashed them into ~10,000, most of the query's time. Now a histogram is the numeric
-- sum over its buckets of calls * 10^(12 * bucket): bucket b is the 12 decimal digits b * 12 .. b * 12 + 11 counted
-- from the right (bucket 0 the last 12). Numbers add digit by digit, so sum() over rows is the histogram of their
-- calls, as long as no bucket reaches 10^12 calls (no carry into the next bucket): more than the calls of any window
-- (30,000 calls a second for a year). Same buckets as before (insights_bucket, 000018), same counts: the figures
-- GET /insights answers do not change.
--
-- insights_hist_buckets(h) reads one back: (bucket, calls) from its lowest to its highest non-zero bucket (zeros in
-- between included; no row for NULL). It goes through the digits as bytes (substr on a bytea is O(1); on text in a
-- UTF-8 database it walks the string, 20 times slower), and it is a one-SELECT SQL function that Postgres inlines
-- into the query calling it. E.g. SELECT * FROM insights_hist_buckets(total_hist) for one row of chat_turns_daily.
CREATE FUNCTION insights_hist_buckets(h numeric) RETURNS TABLE (bucket integer, calls bigint)
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT b, convert_from(substr(x.d, x.len - 12 * b - 11, 12), 'UTF8')::bigint
    FROM (
        -- OFFSET 0: the digits are made once per histogram, not once per bucket.
        SELECT y.d, length(y.d) AS len, (length(y.d) - length(rtrim(y.d, '\x30'::bytea))) / 12 AS lo
        FROM (SELECT convert_to(trunc(h)::text, 'UTF8') AS d) y
        OFFSET 0
    ) x,
    generate_series(x.lo, (x.len - 1) / 12) b
$$;

-- The rows rolled up so far, converted in place (their int[] read with its lower bound as the first bucket).
CREATE FUNCTION pg_temp.insights_hist_from_array(h integer[]) RETURNS numeric
LANGUAGE sql IMMUTABLE
RETURN (
    SELECT (string_agg(lpad(u.n::text, 12, '0'), '' ORDER BY u.o DESC) || repeat('0', 12 * array_lower(h, 1)))::numeric
    FROM unnest(h) WITH ORDINALITY u (n, o)
);

ALTER TABLE chat_turns_daily
    ALTER COLUMN first_token_hist TYPE numeric USING pg_temp.insights_hist_from_array(first_token_hist),
    ALTER COLUMN total_hist TYPE numeric USING pg_temp.insights_hist_from_array(total_hist);
DROP FUNCTION pg_temp.insights_hist_from_array(integer[]);

COMMENT ON COLUMN chat_turns_daily.first_token_hist IS
    'sum of calls * 10^(12 * bucket) over insights_bucket(first_token_ms); NULL when no call streamed a token; read with insights_hist_buckets (migration 000021)';
COMMENT ON COLUMN chat_turns_daily.total_hist IS
    'sum of calls * 10^(12 * bucket) over insights_bucket(total_ms); read with insights_hist_buckets (migration 000021)';
