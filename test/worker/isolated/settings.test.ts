/**
 * The isolated group 'settings' (test/isolated-suites.ts): a world of its own whose files run one after another, in this
 * order. Each is imported inside a describe of its own, so that its top-level hooks apply to its own tests only.
 */
import { describe } from 'vitest';

describe('context.test.ts', async () => {
  await import('../context.test');
});
describe('spend-limits.test.ts', async () => {
  await import('../spend-limits.test');
});
describe('system-prompt.test.ts', async () => {
  await import('../system-prompt.test');
});
describe('titles.test.ts', async () => {
  await import('../titles.test');
});
describe('retention.test.ts', async () => {
  await import('../retention.test');
});
