/**
 * Batch hot-path of the worker suites (alone: it counts the Worker's Postgres connections or its memory, which the files before it in a batch would move). The Worker's modules are imported once per
 * batch instead of once per file: that import was most of the suite's time. test/node/test-batches.test.ts checks that
 * every shared-world file is in exactly one batch; docs/testing.md says how to run one file alone.
 */
import '../hot-path.test';
