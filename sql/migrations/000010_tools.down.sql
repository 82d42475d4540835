-- Placeholder for 000010_tools (issue 20): see 000010_tools.up.sql.
SELECT 1;
