/**
 * The isolated group 'tools' (test/isolated-suites.ts): a world of its own whose files run one after another, in this
 * order. Each is imported inside a describe of its own, so that its top-level hooks apply to its own tests only.
 */
import { describe } from 'vitest';

describe('tools.test.ts', async () => {
  await import('../tools.test');
});
describe('tool-approvals.test.ts', async () => {
  await import('../tool-approvals.test');
});
describe('mcp-servers.test.ts', async () => {
  await import('../mcp-servers.test');
});
