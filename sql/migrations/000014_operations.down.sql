-- The records and debug runs have no place in the older schema; the setting is a row the older code never reads.
DELETE FROM site_configs WHERE key = 'debug_runs';
DROP TABLE chat_debug_runs;
DROP TABLE chat_turns;
