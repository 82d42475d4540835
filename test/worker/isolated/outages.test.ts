/**
 * The isolated group 'outages' (test/isolated-suites.ts): a world of its own whose files run one after another, in this
 * order. Each is imported inside a describe of its own, so that its top-level hooks apply to its own tests only.
 */
import { describe } from 'vitest';

describe('outage.test.ts', async () => {
  await import('../outage.test');
});
describe('usage-outage.test.ts', async () => {
  await import('../usage-outage.test');
});
