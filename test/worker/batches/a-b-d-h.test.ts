/**
 * Batch a-b-d-h of the worker suites (files that share one world, run one after another in one module graph). The Worker's modules are imported once per
 * batch instead of once per file: that import was most of the suite's time. test/node/test-batches.test.ts checks that
 * every shared-world file is in exactly one batch; docs/testing.md says how to run one file alone.
 */
import '../admin-locks.test';
import '../auth-directory.test';
import '../bad-input-admin.test';
import '../bad-input-chats.test';
import '../debug-runs.test';
import '../export-import.test';
import '../file-prompt.test';
import '../files.test';
import '../fork.test';
import '../groups.test';
import '../http.test';
