/**
 * The isolated group 'deployment' (test/isolated-suites.ts): a world of its own whose files run one after another, in this
 * order. Each is imported inside a describe of its own, so that its top-level hooks apply to its own tests only.
 */
import { describe } from 'vitest';

describe('insights-rollup.test.ts', async () => {
  await import('../insights-rollup.test');
});
describe('audit.test.ts', async () => {
  await import('../audit.test');
});
describe('audit-actions.test.ts', async () => {
  await import('../audit-actions.test');
});
describe('files-cron.test.ts', async () => {
  await import('../files-cron.test');
});
describe('sso.test.ts', async () => {
  await import('../sso.test');
});
