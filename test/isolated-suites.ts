/**
 * Worker suites that change what every chat of the database sees (the deployment settings and the cron, in
 * retention; Postgres itself, stopped and started, in outage and usage-outage; enabled MCP servers, whose tools every
 * chat is offered, and the MCP host allowlist, in the tool suites; the default spend limit, which refuses every user's
 * priced turns, in spend-limits; the deployment system prompt; the file cleanup, which removes every unused upload; titles written by a model). Each runs in a world of its own (its own Postgres,
 * proxy, mock LLM and MCP server, from test/global-setup.ts), so they run beside the other files instead of one at a
 * time after them.
 */
export const ISOLATED = [
  'test/worker/retention.test.ts',
  'test/worker/outage.test.ts',
  'test/worker/tools.test.ts',
  'test/worker/tool-approvals.test.ts',
  'test/worker/mcp-servers.test.ts',
  'test/worker/usage-outage.test.ts',
  'test/worker/spend-limits.test.ts',
  'test/worker/system-prompt.test.ts',
  // The file cleanup moves the clock 25 h ahead: every other suite's unused uploads would go.
  'test/worker/files-cron.test.ts',
  // Turns titles written by a model on (the test databases start with them off).
  'test/worker/titles.test.ts',
  // Single sign-on settings (and "require SSO for members") are deployment-wide.
  'test/worker/sso.test.ts',
  'test/worker/audit.test.ts',
  'test/worker/audit-actions.test.ts',
  // Rolls up the deployment's past days and runs the cron.
  'test/worker/insights-rollup.test.ts',
  // Sets the deployment system prompt for one test: every chat's prompt (and its input tokens) would change with it.
  'test/worker/context.test.ts',
];
