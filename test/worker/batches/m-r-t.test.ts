/**
 * Batch m-r-t of the worker suites (files that share one world, run one after another in one module graph). The Worker's modules are imported once per
 * batch instead of once per file: that import was most of the suite's time. test/node/test-batches.test.ts checks that
 * every shared-world file is in exactly one batch; docs/testing.md says how to run one file alone.
 */
import '../message-cache.test';
import '../messages-around.test';
import '../one-writer.test';
import '../rate-limits.test';
import '../regenerate.test';
import '../room-guard.test';
import '../routes-auth.test';
import '../tickets.test';
import '../tool-prompt.test';
import '../turn-records.test';
import '../turns.test';
