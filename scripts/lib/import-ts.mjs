// @ts-check
/**
 * Imports a TypeScript module of the Worker's shared code (functions/core/) into a Node-side tool, so that tools reuse
 * the Worker's own implementation instead of a copy (Node 20 cannot load .ts itself). esbuild bundles the module and
 * its relative imports into one ES module under node_modules/.cache/chatd-ts/ (packages stay imports, resolved from
 * node_modules), named by a hash of what it bundled, and Node imports that file.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, writeFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { build } from 'esbuild';

const root = fileURLToPath(new URL('../..', import.meta.url));

/**
 * @param {string} file  a path relative to the project, e.g. 'functions/core/keyring.ts'
 * @returns {Promise<Record<string, unknown>>}
 */
export async function importTs(file) {
  const out = await build({
    entryPoints: [path.join(root, file)],
    bundle: true,
    packages: 'external',
    platform: 'node',
    format: 'esm',
    target: 'node20',
    write: false,
    logLevel: 'silent',
  });
  const [bundle] = out.outputFiles;
  if (!bundle) throw new Error(`esbuild produced nothing for ${file}`);
  const dir = path.join(root, 'node_modules', '.cache', 'chatd-ts');
  const target = path.join(dir, `${path.basename(file, '.ts')}-${createHash('sha256').update(bundle.contents).digest('hex').slice(0, 16)}.mjs`);
  if (!existsSync(target)) {
    mkdirSync(dir, { recursive: true });
    writeFileSync(target, bundle.contents);
  }
  return /** @type {Record<string, unknown>} */ (await import(pathToFileURL(target).href));
}
