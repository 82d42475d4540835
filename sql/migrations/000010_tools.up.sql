-- Placeholder for 000010_tools (agent tools, MCP: issue 20), which is on its own branch: migrations are numbered
-- without gaps, and usage is 000011. When issue 20 is merged, its 000010_tools files replace these two.
SELECT 1;
