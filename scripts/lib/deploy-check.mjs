// @ts-check
/**
 * The deploy check: bundles the Worker exactly as `wrangler deploy` would (`wrangler deploy --dry-run --outdir`),
 * measures what would be uploaded, raw and gzipped, and compares it with a budget.
 *
 * The budget, from Cloudflare's Worker limits (developers.cloudflare.com/workers/platform/limits/, read 2026-12):
 * - the size limit is now 64 MiB uncompressed on every plan; it used to be 3 MB (Free) and 10 MB (Paid) after
 *   compression, and 1 MB (Free) before that — it has changed three times, so the budget keeps room under the
 *   strictest of them rather than the newest;
 * - a Worker must start within 1 second (global scope evaluated), and a larger bundle starts slower.
 * So: 8 MiB raw (an eighth of today's limit; the bundle is ~5 MB) and 2 MiB gzipped (two thirds of the former Free
 * compressed limit, so an account still under it deploys). Both can be set per run (tests use a tiny one).
 */
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const DEFAULT_BUDGET = { raw: 8 * 1024 * 1024, gzip: 2 * 1024 * 1024 };

/** @typedef {{ file: string, bytes: number, gzip: number }} BundleFile */

/**
 * What would be uploaded from a `--outdir`: every module (source maps and wrangler's README are not uploaded).
 * @param {string} dir
 * @returns {Promise<{ files: BundleFile[], bytes: number, gzip: number }>}
 */
export async function measureBundle(dir) {
  const files = [];
  for (const name of (await readdir(dir)).sort()) {
    if (!/\.(m?js|cjs|wasm|bin|txt|html)$/.test(name) || name === 'README.md') continue;
    const buf = await readFile(path.join(dir, name));
    files.push({ file: name, bytes: buf.length, gzip: gzipSync(buf).length });
  }
  return { files, bytes: files.reduce((a, f) => a + f.bytes, 0), gzip: files.reduce((a, f) => a + f.gzip, 0) };
}

/**
 * Runs `wrangler deploy --dry-run --outdir <tmp>` (with an empty assets directory, so an unbuilt web UI does not
 * stop it: static assets are not part of the Worker's size) and resolves with the bundle's figures.
 * @returns {Promise<{ files: BundleFile[], bytes: number, gzip: number }>}
 */
export async function dryRunBundle() {
  const tmp = await mkdtemp(path.join(tmpdir(), 'chatd-deploy-check-'));
  const outdir = path.join(tmp, 'out');
  const assets = path.join(tmp, 'assets');
  try {
    await mkdir(assets);
    const wrangler = path.join(ROOT, 'node_modules', '.bin', 'wrangler');
    await new Promise((resolve, reject) => {
      const child = spawn(wrangler, ['deploy', '--dry-run', '--outdir', outdir, '--assets', assets], {
        cwd: ROOT,
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { ...process.env, FORCE_COLOR: '0', WRANGLER_SEND_METRICS: 'false' },
      });
      /** @type {Buffer[]} */
      const chunks = [];
      child.stdout.on('data', (/** @type {Buffer} */ b) => chunks.push(b));
      child.stderr.on('data', (/** @type {Buffer} */ b) => chunks.push(b));
      child.once('error', reject);
      child.once('exit', (code) => {
        const text = Buffer.concat(chunks).toString();
        if (code === 0) resolve(undefined);
        else reject(new Error(`wrangler deploy --dry-run failed (exit ${code}):\n${text.trimEnd()}`));
      });
    });
    return await measureBundle(outdir);
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

/** @param {number} n */
const kib = (n) => `${(n / 1024).toFixed(1)} KiB`;

/**
 * Compares figures with a budget; the lines to print, and whether it holds.
 * @param {{ files: BundleFile[], bytes: number, gzip: number }} size
 * @param {{ raw: number, gzip: number }} budget
 * @returns {{ ok: boolean, lines: string[] }}
 */
export function judge(size, budget) {
  const lines = size.files.map((f) => `  ${f.file}: ${kib(f.bytes)}, ${kib(f.gzip)} gzipped`);
  lines.push(`Worker bundle: ${kib(size.bytes)} raw (budget ${kib(budget.raw)}), ${kib(size.gzip)} gzipped (budget ${kib(budget.gzip)})`);
  let ok = true;
  if (size.bytes > budget.raw) {
    ok = false;
    lines.push(`the Worker bundle is over its raw budget by ${kib(size.bytes - budget.raw)}`);
  }
  if (size.gzip > budget.gzip) {
    ok = false;
    lines.push(`the Worker bundle is over its gzipped budget by ${kib(size.gzip - budget.gzip)}`);
  }
  return { ok, lines };
}

/**
 * The budget for this run: DEPLOY_BUDGET_RAW_BYTES / DEPLOY_BUDGET_GZIP_BYTES (or --budget-raw N / --budget-gzip N)
 * override the defaults.
 * @param {string[]} argv
 * @param {NodeJS.ProcessEnv} env
 */
export function budgetFrom(argv, env) {
  /** @param {string} flag @param {string | undefined} envValue @param {number} fallback */
  const pick = (flag, envValue, fallback) => {
    const i = argv.indexOf(flag);
    const text = i >= 0 ? argv[i + 1] : envValue;
    if (text === undefined || text === '') return fallback;
    const n = Number(text);
    if (!Number.isInteger(n) || n <= 0) throw new Error(`${flag}: expected a positive number of bytes, got "${text}"`);
    return n;
  };
  return {
    raw: pick('--budget-raw', env.DEPLOY_BUDGET_RAW_BYTES, DEFAULT_BUDGET.raw),
    gzip: pick('--budget-gzip', env.DEPLOY_BUDGET_GZIP_BYTES, DEFAULT_BUDGET.gzip),
  };
}
