-- Placeholder for 000010_tools (agent tools, MCP: issue 20), which is on its own branch: migrations are numbered
-- without gaps, and usage is 000011. When issue 20 is merged, its 000010_tools files replace these two.
-- Do not migrate a database you keep with this placeholder: version 10 would be recorded as applied, and the real
-- 000010_tools would then never run on it.
SELECT 1;
