/**
 * Worker suites that change what every chat of the database sees (the deployment settings and the cron, in
 * retention; Postgres itself, stopped and started, in outage and usage-outage; enabled MCP servers, whose tools every
 * chat is offered, and the MCP host allowlist, in the tool suites; the default spend limit, which refuses every user's
 * priced turns, in spend-limits; the deployment system prompt; the file cleanup, which removes every unused upload;
 * titles written by a model; single sign-on; the insights rollup). None of them may run beside another file of the
 * same world.
 *
 * They run in groups: each group is a world of its own (its own Postgres, proxy, mock LLM and MCP server, from
 * test/test-world.ts) whose files run one after another, in the order listed, from one file
 * (test/worker/isolated/<group>.test.ts, which calls runGroup in test/worker/isolated/run-group.ts). runGroup imports
 * each inside a describe of its own, so that a file's top-level hooks stay with it. A world of its own costs its start
 * (test/test-world.ts; all worlds start at once, test/global-setup.ts) and an import of the Worker: ~10 s each on this
 * machine before, which fifteen one-file worlds paid fifteen times.
 *
 * Within a group, a file that counts what the whole database holds runs first, and one that leaves a deployment
 * setting behind runs last. CHATD_TEST_FILES=separate gives each file a world of its own, as before (to run one alone).
 */
export const ISOLATED_GROUPS = {
  // Postgres stopped and started.
  outages: ['test/worker/outage.test.ts', 'test/worker/usage-outage.test.ts'],
  // The deployment system prompt (context and system-prompt, one test each), the default spend limit, titles written
  // by a model (on for the file, off after it), and the retention settings and purge.
  settings: [
    'test/worker/context.test.ts',
    'test/worker/spend-limits.test.ts',
    'test/worker/system-prompt.test.ts',
    'test/worker/titles.test.ts',
    'test/worker/retention.test.ts',
  ],
  // Enabled MCP servers and the MCP host allowlist (each file removes its servers after each test).
  tools: ['test/worker/tools.test.ts', 'test/worker/tool-approvals.test.ts', 'test/worker/mcp-servers.test.ts'],
  // The insights rollup reads every rolled-up row of the database: first, before any other file's cron runs. The file
  // cleanup moves the clock 25 h ahead (every unused upload of the world goes). Single sign-on stays configured after
  // its file: last.
  deployment: [
    'test/worker/insights-rollup.test.ts',
    'test/worker/audit.test.ts',
    'test/worker/audit-actions.test.ts',
    'test/worker/files-cron.test.ts',
    'test/worker/sso.test.ts',
  ],
} as const satisfies Record<string, readonly string[]>;

export type IsolatedGroup = keyof typeof ISOLATED_GROUPS;

/** Every isolated file. */
export const ISOLATED: readonly string[] = Object.values(ISOLATED_GROUPS).flat();
