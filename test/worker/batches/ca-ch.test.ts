/**
 * Batch ca-ch of the worker suites (files that share one world, run one after another in one module graph). The Worker's modules are imported once per
 * batch instead of once per file: that import was most of the suite's time. test/node/test-batches.test.ts checks that
 * every shared-world file is in exactly one batch; docs/testing.md says how to run one file alone.
 */
// First in the batch (nothing before it in this module graph): it counts the prepared statements of a connection.
import '../db.test';
import '../chat-models.test';
import '../chats.test';
