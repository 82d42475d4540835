/**
 * The order the suites start in: the longest files first, so that the two workers end together instead of one of them
 * running a long file alone at the end. Vitest orders by the durations of the previous run, which a clean clone (CI)
 * does not have: it then falls back to file size, which says little here (the outage group is small and waits 35 s on
 * Postgres; the browser tests start a whole stack). The list holds the files measured at over ~14 s on a 2-core
 * machine under ci-repeat's extra load (the durations vitest prints per file); a file not in it keeps vitest's order, after them.
 */
import { BaseSequencer, type TestSpecification } from 'vitest/node';

const LONGEST_FIRST = [
  'test/node/scaletest.test.ts',
  'test/node/web.test.ts',
  'test/node/web-chat.test.ts',
  'test/node/web-admin.test.ts',
  'test/node/web-share.test.ts',
  'test/node/web-insights.test.ts',
  'test/worker/batches/a-b-d-h.test.ts',
  'test/worker/batches/m-r-t.test.ts',
  'test/worker/batches/sa-se.test.ts',
  'test/worker/batches/ca-ch.test.ts',
  'test/worker/isolated/outages.test.ts',
  'test/worker/isolated/settings.test.ts',
  'test/worker/batches/ci-cz-i-l.test.ts',
  'test/worker/batches/u-z.test.ts',
  'test/worker/batches/sf-sz.test.ts',
  'test/worker/isolated/tools.test.ts',
  'test/worker/isolated/deployment.test.ts',
  'test/node/web-conversation.test.ts',
  'test/node/smoke.test.ts',
  'test/node/web-tools.test.ts',
  'test/node/web-sso.test.ts',
  'test/node/local-pg-errors.test.ts',
  'test/node/dev-seed.test.ts',
  'test/node/dev-tools.test.ts',
  'test/node/local-pg-private.test.ts',
];

function rank(spec: TestSpecification): number {
  const i = LONGEST_FIRST.findIndex((f) => spec.moduleId.endsWith(f));
  return i < 0 ? LONGEST_FIRST.length : i;
}

export default class LongestFirst extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const base = await super.sort(files);
    // Array.prototype.sort is stable: files of equal rank keep vitest's order.
    return [...base].sort((a, b) => rank(a) - rank(b));
  }
}
