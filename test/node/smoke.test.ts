/**
 * `npm run smoke` against the local stack (wrangler dev, a throwaway Postgres, the mock LLM seeded as the default
 * model): it creates the first user when asked, then logs in, runs a turn and reads the answer over the stream (a
 * ticket, then the WebSocket); each failure is said in plain words with exit code 1, bad arguments exit 2.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLocalStack, type LocalStack } from '../../scripts/lib/scaletest-stack.mjs';
import { ROOT } from '../../scripts/lib/scratch-db.mjs';

let stack: LocalStack;

beforeAll(async () => {
  stack = await startLocalStack({
    root: ROOT,
    env: { CHATD_NO_SEED: '0', OPENAI_API_KEY: '', ANTHROPIC_API_KEY: '', GOOGLE_GENERATIVE_AI_API_KEY: '', OPENROUTER_API_KEY: '' },
    wranglerArgs: ['--var', 'LLM_MAX_RETRIES:0'],
  });
}, 180_000);

afterAll(async () => {
  await stack.stop({ keep: 'none' });
}, 60_000);

function smoke(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(ROOT, 'scripts', 'smoke.mjs'), ...args], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, SMOKE_EMAIL: '', SMOKE_PASSWORD: '', ...env },
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

const OWNER = ['--email', 'owner@example.com', '--password', 'correct horse battery'];

describe('npm run smoke', () => {
  it('on a deployment without users: says to create the first one, then creates it when asked and runs a turn', async () => {
    const first = await smoke(['--url', stack.url, ...OWNER]);
    expect(first.code).toBe(1);
    expect(first.out).toContain('ok   healthz: the Worker answers and reaches Postgres\n');
    expect(first.out).toContain('FAIL login: the deployment has no users yet: run again with --create-first-user to create the first owner\n');

    const created = await smoke(['--url', stack.url, ...OWNER, '--create-first-user', '--message', 'hello from the smoke test']);
    expect(created.out).toContain('ok   login: created the first user owner@example.com (an owner)\n');
    expect(created.out).toMatch(/^ok {3}model: .+ \(openai-compat mock-echo\)$/m);
    expect(created.out).toMatch(/^ok {3}chat: started chat [0-9a-f-]{36}$/m);
    expect(created.out).toMatch(/^ok {3}stream: the answer came over the stream: ".*hello from the smoke test.*"$/m);
    expect(created.out).toContain('smoke: the deployment works\n');
    expect(created.code).toBe(0);
  }, 120_000);

  it('logs in when the first user exists (with --create-first-user too), from the environment', async () => {
    const again = await smoke(['--url', stack.url, '--create-first-user'], { SMOKE_EMAIL: 'owner@example.com', SMOKE_PASSWORD: 'correct horse battery' });
    expect(again.out).toContain('ok   login: logged in as owner@example.com\n');
    expect(again.code).toBe(0);
  }, 120_000);

  it('says what failed: a wrong password, a model that does not exist, a failing model call', async () => {
    const wrong = await smoke(['--url', stack.url, '--email', 'owner@example.com', '--password', 'wrong password here']);
    expect(wrong.out).toContain('FAIL login: the email or password was refused for owner@example.com\n');
    expect(wrong.code).toBe(1);

    const noModel = await smoke(['--url', stack.url, ...OWNER, '--model', 'gpt-nothing']);
    expect(noModel.out).toContain('FAIL model: no enabled model is called "gpt-nothing" (there are: mock-echo)\n');
    expect(noModel.code).toBe(1);

    const failing = await smoke(['--url', stack.url, ...OWNER, '--message', 'fail please [[mock error_status=400]]']);
    expect(failing.out).toMatch(/^FAIL stream: the model call failed \(\w+\): .+: check the provider's key and base URL, and the model's name$/m);
    expect(failing.out).toContain('smoke: FAILED (see above)\n');
    expect(failing.code).toBe(1);
  }, 120_000);

  it('says when nothing answers at the URL, and refuses bad arguments with exit code 2', async () => {
    const nothing = await smoke(['--url', 'http://127.0.0.1:9', ...OWNER]);
    expect(nothing.out).toMatch(/^FAIL healthz: nothing answered at http:\/\/127\.0\.0\.1:9 \(.+\): is the URL right, and is the Worker deployed\?$/m);
    expect(nothing.code).toBe(1);

    const bad = await smoke(['--url', 'ftp://x', ...OWNER]);
    expect(bad.out).toContain('smoke: --url must be an http(s) URL, got "ftp://x"\n');
    expect(bad.code).toBe(2);
    const missing = await smoke(['--url', stack.url]);
    expect(missing.out).toContain('smoke: --email and --password (or SMOKE_EMAIL and SMOKE_PASSWORD) are required\n');
    expect(missing.code).toBe(2);
  }, 60_000);
});
