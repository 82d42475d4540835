// @ts-check
/**
 * `npm run web:build`: builds the web UI into web/dist (the Worker's static assets) and prints the initial JS size,
 * gzipped, against the budget (150 KB). `--watch` keeps rebuilding on change. `--size` only prints the size.
 */
import { buildWeb, initialJsSize } from './lib/web-build.mjs';

// Vite and the React plugin build for NODE_ENV: a value inherited from a caller (vitest sets "test") would give
// React's development build (larger, slower, StrictMode running every effect twice).
process.env.NODE_ENV = 'production';

const BUDGET_KB = 150;
const args = new Set(process.argv.slice(2));

if (!args.has('--size')) await buildWeb({ watch: args.has('--watch'), log: (line) => process.stdout.write(`${line}\n`) });
const size = await initialJsSize();
/** @param {number} n */
const kb = (n) => (n / 1024).toFixed(1);
for (const f of size.files) process.stdout.write(`  ${f.file}: ${kb(f.bytes)} KB, ${kb(f.gzip)} KB gzipped\n`);
process.stdout.write(`initial JS: ${kb(size.bytes)} KB, ${kb(size.gzip)} KB gzipped (budget ${BUDGET_KB} KB)\n`);
for (const f of size.lazy) process.stdout.write(`  loaded on demand: ${f.file}: ${kb(f.gzip)} KB gzipped\n`);
if (size.gzip > BUDGET_KB * 1024) {
  process.stderr.write(`the initial JS is over the budget of ${BUDGET_KB} KB gzipped\n`);
  process.exitCode = 1;
}
