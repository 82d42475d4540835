// @ts-check
/**
 * Builds the web UI (web/, Vite) into web/dist, the Worker's static assets (wrangler.toml [assets]), and copies
 * Swagger UI's files from swagger-ui-dist into web/dist/swagger-ui/ so /api/v2/docs needs no CDN.
 * `watch: true` rebuilds on every change (npm run dev); wrangler dev serves the new files on the next request.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { copyFile, mkdir, readdir, readFile, rmdir } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const WEB_DIR = path.join(ROOT, 'web');
export const WEB_DIST = path.join(WEB_DIR, 'dist');
const SWAGGER_FILES = ['swagger-ui.css', 'swagger-ui-bundle.js'];

/** Copies Swagger UI's stylesheet and bundle into web/dist/swagger-ui/ (init.js comes from web/public). */
export async function copySwaggerUi() {
  const require = createRequire(import.meta.url);
  const from = path.dirname(require.resolve('swagger-ui-dist/package.json'));
  const to = path.join(WEB_DIST, 'swagger-ui');
  await mkdir(to, { recursive: true });
  for (const f of SWAGGER_FILES) await copyFile(path.join(from, f), path.join(to, f));
}

/** @typedef {{ file: string, bytes: number, gzip: number }} JsFile */

/**
 * The JavaScript a first visit loads before the page can run: the entry script of index.html and the modules it
 * preloads (lazy chunks, such as the admin screens, are not counted).
 * @returns {Promise<{ files: JsFile[], bytes: number, gzip: number, lazy: JsFile[] }>}
 */
export async function initialJsSize() {
  const html = await readFile(path.join(WEB_DIST, 'index.html'), 'utf8');
  const refs = new Set(/** @type {string[]} */ ([]));
  for (const m of html.matchAll(/<script[^>]*type="module"[^>]*src="([^"]+)"/g)) if (m[1]) refs.add(m[1]);
  for (const m of html.matchAll(/<link[^>]*rel="modulepreload"[^>]*href="([^"]+)"/g)) if (m[1]) refs.add(m[1]);
  const files = [];
  for (const ref of refs) {
    const buf = await readFile(path.join(WEB_DIST, ref.replace(/^\//, '')));
    files.push({ file: ref, bytes: buf.length, gzip: gzipSync(buf, { level: 9 }).length });
  }
  const lazy = [];
  for (const name of await readdir(path.join(WEB_DIST, 'assets'))) {
    const ref = `/assets/${name}`;
    if (!name.endsWith('.js') || refs.has(ref)) continue;
    const buf = await readFile(path.join(WEB_DIST, 'assets', name));
    lazy.push({ file: ref, bytes: buf.length, gzip: gzipSync(buf, { level: 9 }).length });
  }
  return { files, bytes: files.reduce((a, f) => a + f.bytes, 0), gzip: files.reduce((a, f) => a + f.gzip, 0), lazy };
}

/**
 * Builds web/ once, or keeps rebuilding it (`watch`). Resolves after the first build.
 * @param {{ watch?: boolean, log?: (line: string) => void }} [opts]
 * @returns {Promise<{ close: () => Promise<void> }>}
 */
export async function buildWeb({ watch = false, log = () => {} } = {}) {
  const { build } = await import('vite');
  const t = performance.now();
  const configFile = path.join(WEB_DIR, 'vite.config.ts');
  if (!watch) {
    await build({ configFile, logLevel: 'warn' });
    await copySwaggerUi();
    log(`web: built web/dist in ${Math.round(performance.now() - t)} ms`);
    return { close: async () => {} };
  }
  const watcher = await build({ configFile, logLevel: 'warn', build: { watch: {} } });
  if (!('on' in watcher)) throw new Error('vite build --watch did not return a watcher');
  /** @type {Promise<void>} */
  const first = new Promise((resolve, reject) => {
    let started = false;
    watcher.on('event', (e) => {
      if (e.code === 'END') {
        copySwaggerUi().then(
          () => {
            log(started ? 'web: rebuilt web/dist' : `web: built web/dist in ${Math.round(performance.now() - t)} ms, watching web/ for changes`);
            started = true;
            resolve();
          },
          (err) => reject(err),
        );
      } else if (e.code === 'ERROR') {
        log(`web: build failed: ${e.error.message}`);
        if (!started) reject(e.error);
      }
    });
  });
  await first;
  return { close: () => watcher.close() };
}

/**
 * The newest modification time of the files the build reads (web/ but its output, and the SDK's sources).
 * @returns {number}
 */
function newestSource() {
  let newest = 0;
  /** @param {string} dir */
  const walk = (dir) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) {
        if (p !== WEB_DIST && e.name !== 'node_modules') walk(p);
      } else newest = Math.max(newest, statSync(p).mtimeMs);
    }
  };
  walk(WEB_DIR);
  walk(path.join(ROOT, 'sdk', 'src'));
  return newest;
}

/** Whether web/dist is a build of the sources as they are now (its index.html is newer than every source). */
export function webDistFresh() {
  const index = path.join(WEB_DIST, 'index.html');
  return existsSync(index) && statSync(index).mtimeMs > newestSource();
}

/**
 * Builds web/dist unless it is fresh, once across processes: the browser test files run in parallel, and a rebuild
 * while another stack serves web/dist makes its `wrangler dev` reload the Worker (a scale test's CPU profile of the
 * old isolate is then lost). A folder under .data is the lock; `build` runs in the caller's choice of process.
 * @param {() => void} build
 * @param {{ timeoutMs?: number }} [opts]
 */
export async function buildWebOnce(build, { timeoutMs = 300_000 } = {}) {
  const lock = path.join(ROOT, '.data', 'web-build.lock');
  await mkdir(path.dirname(lock), { recursive: true });
  const until = Date.now() + timeoutMs;
  for (;;) {
    if (webDistFresh()) return;
    try {
      await mkdir(lock);
    } catch {
      // Another process builds: wait for it to finish (the lock goes away), then look again.
      if (Date.now() > until) throw new Error(`web build lock ${lock} held for ${timeoutMs} ms: remove it if no build runs`);
      await new Promise((r) => setTimeout(r, 200));
      continue;
    }
    try {
      if (!webDistFresh()) build();
    } finally {
      await rmdir(lock);
    }
    return;
  }
}
