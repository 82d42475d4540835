/**
 * The worker suites that share one world run in batches (test/worker/batches/*.test.ts, each importing its files), so
 * that the Worker is imported once per batch; the isolated ones run in groups (test/worker/isolated/<group>.test.ts,
 * one world per group, from ISOLATED_GROUPS). A file in no batch and no group would never run under `npm test`: this
 * checks that every shared-world file is in exactly one batch, that batches import only such files, and that each
 * group's file runs exactly its group (runGroup, which imports the group's files as listed).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ISOLATED, ISOLATED_GROUPS } from '../isolated-suites.js';
import { workerDeps } from '../worker-deps.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const WORKER = fileURLToPath(new URL('../worker/', import.meta.url));
const BATCHES = `${WORKER}batches/`;
const GROUPS = `${WORKER}isolated/`;

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

  it('run every isolated file in exactly one group, and each group from its own file', () => {
    const files = ISOLATED.map((f) => f.replace('test/worker/', ''));
    expect(files.filter((f, i) => files.indexOf(f) !== i), 'in more than one group').toEqual([]);
    const onDisk = new Set(readdirSync(WORKER).filter((f) => f.endsWith('.test.ts')));
    expect(files.filter((f) => !onDisk.has(f)), 'no such file in test/worker/').toEqual([]);
    const groupFiles = readdirSync(GROUPS).filter((f) => f.endsWith('.test.ts'));
    expect(groupFiles.sort()).toEqual(Object.keys(ISOLATED_GROUPS).map((g) => `${g}.test.ts`).sort());
    for (const group of Object.keys(ISOLATED_GROUPS)) {
      const text = readFileSync(`${GROUPS}${group}.test.ts`, 'utf8');
      expect([...text.matchAll(/^runGroup\('([\w-]+)'\);$/gm)].map((m) => m[1]), `test/worker/isolated/${group}.test.ts`).toEqual([group]);
    }
  });
});

describe('the worker suites’ bundled dependencies', () => {
  it('are every package the Worker and its suites import, subpaths and test-only imports included, and nothing else', () => {
    const deps = workerDeps(ROOT);
    // Subpaths (separate entry points) and an import only the suites make are found.
    expect(deps).toEqual(expect.arrayContaining(['zod', 'hono', 'hono/cookie', 'ai', 'ai/test', '@hono/zod-openapi', '@modelcontextprotocol/sdk/client/index.js']));
    // Never the runtime's or the runner's modules, a relative path, the SDK alias, or the package the bundler cannot take.
    expect(deps.filter((d) => /^(cloudflare:|node:|\.|vitest$|@chatd-edge\/sdk$|@pgtyped\/runtime$)/.test(d))).toEqual([]);
    expect(deps).toEqual([...new Set(deps)].sort());
  });
});
