// @ts-check
/**
 * The checks `npm test` runs before the suites, two at a time (the machine has two cores; each check is one
 * process), the longest first: the type-checks, lint, the generated-code checks, the web build and the SDK build (for
 * the Node suites and scripts, which run sdk/dist; the type-checks and lint read the SDK's source, so it need not come
 * first). Each check's output is shown when it ends, whole, so that parallel output does not interleave;
 * the exit code is 1 when any failed, after all have run (one run shows every problem).
 *
 *   node scripts/checks.mjs            every check
 *   node scripts/checks.mjs lint tsc   only the checks whose name contains one of the words
 */
import { spawn } from 'node:child_process';
import { cpus } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const bin = (/** @type {string} */ name) => path.join(ROOT, 'node_modules', '.bin', name);
const node = (/** @type {string} */ script, /** @type {string[]} */ ...args) => [process.execPath, path.join(ROOT, 'scripts', script), ...args];

/** @type {{ name: string, cmd: string[], show?: boolean }[]} two at a time, the longest first */
const CHECKS = [
  { name: 'tsc (Worker, objects, SDK)', cmd: [bin('tsc'), '--noEmit', '-p', '.'] },
  { name: 'lint', cmd: [bin('eslint'), '.'] },
  { name: 'web build', cmd: node('web-build.mjs'), show: true }, // prints the initial JS size against its budget
  { name: 'codegen check (SQL)', cmd: node('codegen.mjs', '--check') },
  { name: 'tsc (scripts, node tests)', cmd: [bin('tsc'), '--noEmit', '-p', 'scripts'] },
  { name: 'tsc (web)', cmd: [bin('tsc'), '--noEmit', '-p', 'web'] },
  { name: 'types check (wrangler)', cmd: node('types.mjs', '--check') },
  { name: 'sdk check (OpenAPI)', cmd: node('sdk-gen.mjs', '--check') },
  { name: 'deploy check (wrangler dry-run size)', cmd: node('deploy-check.mjs'), show: true }, // prints the bundle size against its budget
  { name: 'sdk build', cmd: [bin('tsc'), '-p', 'sdk'] },
];

const words = process.argv.slice(2);
const chosen = (/** @type {{ name: string }} */ c) => words.length === 0 || words.some((w) => c.name.includes(w));

/**
 * @param {{ name: string, cmd: string[], show?: boolean }} check
 * @returns {Promise<boolean>}
 */
function run(check) {
  const t = performance.now();
  return new Promise((resolve) => {
    const [cmd = '', ...args] = check.cmd;
    const child = spawn(cmd, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, FORCE_COLOR: process.stdout.isTTY ? '1' : '0' } });
    /** @type {Buffer[]} */
    const out = [];
    child.stdout.on('data', (/** @type {Buffer} */ b) => out.push(b));
    child.stderr.on('data', (/** @type {Buffer} */ b) => out.push(b));
    const done = (/** @type {boolean} */ ok, /** @type {string} */ why) => {
      const s = ((performance.now() - t) / 1000).toFixed(1);
      const text = Buffer.concat(out).toString().trimEnd();
      process.stdout.write(`${ok ? 'ok  ' : 'FAIL'} ${check.name} (${s} s)${why}\n${text && (!ok || check.show) ? `${text}\n` : ''}`);
      resolve(ok);
    };
    child.once('error', (e) => done(false, `: ${e.message}`));
    child.once('exit', (code, signal) => done(code === 0, code === 0 ? '' : `: exit ${code ?? signal}`));
  });
}

const t0 = performance.now();
/** @type {string[]} */
const failed = [];
const queue = CHECKS.filter(chosen);
const width = Math.max(1, Math.min(2, cpus().length));
await Promise.all(
  Array.from({ length: width }, async () => {
    for (let c = queue.shift(); c; c = queue.shift()) if (!(await run(c))) failed.push(c.name);
  }),
);
const total = ((performance.now() - t0) / 1000).toFixed(1);
if (failed.length > 0) {
  process.stdout.write(`checks: ${failed.length} failed (${failed.join(', ')}) in ${total} s\n`);
  process.exit(1);
}
process.stdout.write(`checks: all passed in ${total} s\n`);
