-- Back to 000018's int[] histograms (subscript = bucket number, trimmed to the first and last non-empty bucket),
-- the rows converted in place: the same counts.
CREATE FUNCTION pg_temp.insights_hist_to_array(h numeric) RETURNS integer[]
LANGUAGE sql IMMUTABLE
RETURN (
    SELECT (format('[%s:%s]=', min(bucket), max(bucket)) || array_agg(calls ORDER BY bucket)::text)::integer[]
    FROM insights_hist_buckets(h)
);

ALTER TABLE chat_turns_daily
    ALTER COLUMN first_token_hist TYPE integer[] USING pg_temp.insights_hist_to_array(first_token_hist),
    ALTER COLUMN total_hist TYPE integer[] USING pg_temp.insights_hist_to_array(total_hist);

COMMENT ON COLUMN chat_turns_daily.first_token_hist IS NULL;
COMMENT ON COLUMN chat_turns_daily.total_hist IS NULL;

DROP FUNCTION pg_temp.insights_hist_to_array(numeric);
DROP FUNCTION insights_hist_buckets(numeric);
