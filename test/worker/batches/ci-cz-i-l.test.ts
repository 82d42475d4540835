/**
 * Batch ci-cz-i-l of the worker suites (files that share one world, run one after another in one module graph). The Worker's modules are imported once per
 * batch instead of once per file: that import was most of the suite's time. test/node/test-batches.test.ts checks that
 * every shared-world file is in exactly one batch; docs/testing.md says how to run one file alone.
 */
// First in the batch (nothing before it in this module graph): it aborts every object of the graph, and measures one.
import '../memory.test';
import '../credentials.test';
import '../insights.test';
import '../internal-errors.test';
import '../lean-compat.test';
import '../limits.test';
