// @ts-check
/**
 * Generates worker-configuration.d.ts (the Env type) from wrangler.toml, with secret names from
 * .dev.vars.example.
 *   node scripts/types.mjs          regenerate
 *   node scripts/types.mjs --check  fail when the committed file is out of date (the tree is left as it was)
 * (`wrangler types --check` ignores --env-file when it recomputes the hash, so it always reports drift.)
 */
import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const FILE = path.join(ROOT, 'worker-configuration.d.ts');
const check = process.argv.includes('--check');

const before = await readFile(FILE, 'utf8').catch(() => null);
try {
  await promisify(execFile)(
    path.join(ROOT, 'node_modules', '.bin', 'wrangler'),
    ['types', '--env-file', '.dev.vars.example', '--strict-vars=false'],
    { cwd: ROOT, env: { ...process.env, WRANGLER_SEND_METRICS: 'false' } },
  );
} catch (e) {
  const out = /** @type {{ stdout?: string, stderr?: string }} */ (e);
  console.error(out.stdout ?? '', out.stderr ?? '');
  process.exit(1);
}
const after = await readFile(FILE, 'utf8');
if (check) {
  if (before !== null) await writeFile(FILE, before);
  if (before !== after) {
    console.error('worker-configuration.d.ts is out of date with wrangler.toml / .dev.vars.example. Run `npm run types` and commit it.');
    process.exit(1);
  }
  console.log('types: worker-configuration.d.ts is up to date');
} else {
  console.log(before === after ? 'types: no changes' : 'types: wrote worker-configuration.d.ts');
}
