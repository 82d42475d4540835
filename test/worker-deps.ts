/**
 * The npm packages the Worker, its objects and their suites import, for Vite to bundle once before the worker suites
 * run (vitest's `deps.optimizer.ssr`, in vitest.config.ts). The workers pool otherwise loads every file of every package
 * into each project's workerd one module at a time (it inlines all dependencies), for each of the fourteen batches and
 * groups. Bundled, a quiet `npx vitest run` spent 77.3 s importing (summed over files) instead of 102.4 s.
 *
 * The list is read from the sources, every time, so that it cannot fall behind the code: each entry point bundled
 * together shares its chunks with the others (`ai` and `ai/test` keep one copy of their classes), and an import left
 * out would still load, unbundled, as a second copy of the package.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

/** Where the Worker's and its suites' imports are written. */
const SOURCES = ['functions', 'durable-objects', 'test/worker'];

/**
 * Imports that are not bundled: the runtime's and the test runner's own modules, the SDK (an alias of its source), and
 * `@pgtyped/runtime`, whose parser (antlr4ts) `require`s Node built-ins that the bundler cannot resolve for workerd.
 */
const NOT_BUNDLED = /^(cloudflare:|node:|vitest$|@chatd-edge\/sdk$|@pgtyped\/runtime$)/;

/** `from 'pkg'` and `import 'pkg'`: a bare specifier, not a relative path. */
const BARE_IMPORT = /(?:\bfrom|^import)\s+'([^.'/][^']*)'/gm;

function tsFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && e.name.endsWith('.ts'))
    .map((e) => path.join(e.parentPath, e.name));
}

/** The bare imports of the Worker's, the objects' and the worker suites' sources, sorted, without NOT_BUNDLED. */
export function workerDeps(root: string): string[] {
  const found = new Set<string>();
  for (const dir of SOURCES) {
    for (const file of tsFiles(path.join(root, dir))) {
      for (const m of readFileSync(file, 'utf8').matchAll(BARE_IMPORT)) {
        const spec = m[1];
        if (spec !== undefined && !NOT_BUNDLED.test(spec)) found.add(spec);
      }
    }
  }
  return [...found].sort();
}
