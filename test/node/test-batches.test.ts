/**
 * The worker suites that share one world run in batches (test/worker/batches/*.test.ts, each importing its files), so
 * that the Worker is imported once per batch. A file in no batch would never run under `npm test`: this checks that
 * every shared-world file is in exactly one batch, and that batches import only such files.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ISOLATED } from '../isolated-suites.js';

const WORKER = fileURLToPath(new URL('../worker/', import.meta.url));
const BATCHES = `${WORKER}batches/`;

describe('worker suite batches', () => {
  it('hold every shared-world file exactly once, and nothing else', () => {
    const isolated = new Set(ISOLATED.map((f) => f.replace('test/worker/', '')));
    const shared = readdirSync(WORKER).filter((f) => f.endsWith('.test.ts') && !isolated.has(f));
    const imported: string[] = [];
    for (const b of readdirSync(BATCHES).filter((f) => f.endsWith('.test.ts'))) {
      const text = readFileSync(`${BATCHES}${b}`, 'utf8');
      imported.push(...[...text.matchAll(/^import '\.\.\/([\w-]+\.test)';$/gm)].map((m) => `${m[1] ?? ''}.ts`));
    }
    const missing = shared.filter((f) => !imported.includes(f));
    expect(missing, 'add these files to a batch in test/worker/batches/').toEqual([]);
    expect(imported.filter((f, i) => imported.indexOf(f) !== i), 'in more than one batch').toEqual([]);
    expect(imported.filter((f) => !shared.includes(f)), 'not a shared-world file').toEqual([]);
    expect(shared.length).toBeGreaterThan(40);
  });
});
