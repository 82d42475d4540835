// @ts-check
/** `npm run dev`'s last step: wrangler dev, its output relayed, stopped with the rest, and the "ready" line. */
import { spawn } from 'node:child_process';
import path from 'node:path';
import readline from 'node:readline';
import { ROOT, errorMessage } from '../migrate.mjs';
import { withTimeout } from './dev-lifecycle.mjs';

export const WRANGLER_BIN = path.join(ROOT, 'node_modules', '.bin', 'wrangler');

/**
 * Starts `wrangler dev` with `args`, registered in `life` so a shutdown stops it first (the Worker before what it uses);
 * wrangler exiting by itself stops the rest.
 * @param {{
 *   args: string[],
 *   life: import('./dev-lifecycle.mjs').Lifecycle,
 *   out: (prefix: string, line: string) => void,
 *   err: (prefix: string, line: string) => void,
 * }} o
 */
export function startWrangler({ args, life, out, err }) {
  const child = spawn(WRANGLER_BIN, args, {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...(process.stdout.isTTY && !process.env.NO_COLOR ? { FORCE_COLOR: '1' } : {}) },
  });
  /** @type {Promise<void>} */
  const exited = new Promise((resolve) => child.once('exit', () => resolve()));
  life.running.push({
    name: 'wrangler',
    first: true,
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      // bin/wrangler forwards SIGTERM to its CLI process, which stops workerd before exiting.
      child.kill('SIGTERM');
      try {
        await withTimeout(exited, 10_000, 'wrangler');
      } catch {
        err('[dev]', `wrangler (pid ${child.pid}) did not exit after SIGTERM; sending SIGKILL`);
        child.kill('SIGKILL');
        await exited;
      }
      out('[wrangler]', 'stopped');
    },
  });
  child.once('error', (e) => {
    err('[dev]', `cannot run wrangler: ${errorMessage(e)}`);
    void life.shutdown(1);
  });
  child.once('exit', (code, signal) => {
    if (life.stopping) return;
    err('[dev]', `wrangler exited by itself (${code !== null ? `code ${code}` : signal}); stopping the rest`);
    void life.shutdown(code ?? 1);
  });

  /** @param {NodeJS.ReadableStream} stream @param {(prefix: string, line: string) => void} write */
  const relay = (stream, write) => {
    readline.createInterface({ input: stream, crlfDelay: Infinity }).on('line', (line) => write('[wrangler]', line));
  };
  if (child.stdout) relay(child.stdout, out);
  if (child.stderr) relay(child.stderr, err);
}
