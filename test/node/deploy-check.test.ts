/**
 * The deploy check (scripts/deploy-check.mjs, one of `npm test`'s checks) bundles the Worker with
 * `wrangler deploy --dry-run` and fails when the bundle is over its budget. With a budget of a few bytes the real
 * bundle is over it: the script says by how much and exits 1; with the default budget it passes.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { budgetFrom, DEFAULT_BUDGET, judge } from '../../scripts/lib/deploy-check.mjs';
import { ROOT } from '../../scripts/lib/scratch-db.mjs';

function run(args: string[], env: Record<string, string>): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(ROOT, 'scripts', 'deploy-check.mjs'), ...args], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...env },
    });
    const chunks: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => chunks.push(b));
    child.stderr.on('data', (b: Buffer) => chunks.push(b));
    child.on('error', reject);
    child.on('exit', (code) => {
      resolve({ code, out: Buffer.concat(chunks).toString() });
    });
  });
}

describe('deploy check', () => {
  it('fails on a bundle over a tiny gzipped budget, and prints the raw and gzipped figures', async () => {
    const { code, out } = await run([], { DEPLOY_BUDGET_GZIP_BYTES: '1000' });
    expect(code).toBe(1);
    expect(out).toMatch(/^Worker bundle: \d+\.\d KiB raw \(budget 8192\.0 KiB\), \d+\.\d KiB gzipped \(budget 1\.0 KiB\)$/m);
    expect(out).toMatch(/^the Worker bundle is over its gzipped budget by \d+\.\d KiB$/m);
    expect(out).not.toMatch(/over its raw budget/);
  }, 120_000);

  it('judges each budget on its own', () => {
    const size = { files: [{ file: 'index.js', bytes: 2048, gzip: 1024 }], bytes: 2048, gzip: 1024 };
    expect(judge(size, { raw: 2048, gzip: 1024 })).toEqual({
      ok: true,
      lines: ['  index.js: 2.0 KiB, 1.0 KiB gzipped', 'Worker bundle: 2.0 KiB raw (budget 2.0 KiB), 1.0 KiB gzipped (budget 1.0 KiB)'],
    });
    expect(judge(size, { raw: 1024, gzip: 1024 })).toEqual({
      ok: false,
      lines: [
        '  index.js: 2.0 KiB, 1.0 KiB gzipped',
        'Worker bundle: 2.0 KiB raw (budget 1.0 KiB), 1.0 KiB gzipped (budget 1.0 KiB)',
        'the Worker bundle is over its raw budget by 1.0 KiB',
      ],
    });
  });

  it('takes the budget from flags, then the environment, then the defaults; refuses a bad one', () => {
    expect(budgetFrom([], {})).toEqual(DEFAULT_BUDGET);
    expect(budgetFrom(['--budget-raw', '10'], { DEPLOY_BUDGET_RAW_BYTES: '20', DEPLOY_BUDGET_GZIP_BYTES: '5' })).toEqual({ raw: 10, gzip: 5 });
    expect(() => budgetFrom(['--budget-gzip', 'lots'], {})).toThrow('--budget-gzip: expected a positive number of bytes, got "lots"');
  });
});
