/**
 * Runs an isolated group's files (test/isolated-suites.ts) in its world, one after another in the order listed. Each is
 * imported inside a describe of its own, so that its top-level hooks (titles' beforeAll, retention's afterEach) apply to
 * its own tests only.
 */
import { describe } from 'vitest';
import { ISOLATED_GROUPS, type IsolatedGroup } from '../../isolated-suites';

export function runGroup(group: IsolatedGroup): void {
  for (const file of ISOLATED_GROUPS[group]) {
    const name = file.slice('test/worker/'.length);
    describe(name, async () => {
      // A path known only at run time: the module runner resolves it then (Vite cannot, and would warn).
      await import(/* @vite-ignore */ `../${name}`);
    });
  }
}
