-- The rollup is derived from chat_turns (which stays): dropping it loses nothing the older code reads.
DROP TABLE chat_turns_rollup_days;
DROP TABLE chat_turns_daily;
DROP FUNCTION insights_bucket(integer);
