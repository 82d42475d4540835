/**
 * Runs in Node before the suites, once per worker project: hands the project a world of its own (test/test-world.ts: a
 * Postgres with the migrations, the proxy, the mock LLM, the MCP server, the OpenID provider, a push service).
 *
 * Why a pool: vitest runs the projects' global setups one after another, and loads each one's module graph anew
 * (~2 s of imports) before it starts its world (~1.3 s): five worlds took 18–26 s before the first test of any project.
 * So this file imports nothing at load, and the first project's setup loads test-world.ts once and starts the world of
 * every worker project at once; each setup, the first included, takes one. Worlds no project took (a run of some files
 * only) are stopped with the last world that was taken.
 */
import type { ProvidedContext } from 'vitest';
import type { TestProject } from 'vitest/node';
import type { World } from './test-world.js';

interface Pool {
  pending: Promise<World>[];
  taken: number;
  closed: number;
}

const POOL = Symbol.for('chatd-edge.test-worlds');
const pools = globalThis as typeof globalThis & { [POOL]?: Pool };

/** Worker projects: the ones whose global setup is this file. */
function worldsWanted(project: TestProject): number {
  return project.vitest.projects.filter((p) => [p.config.globalSetup].flat().some((f) => f.endsWith('/test/global-setup.ts'))).length;
}

function provide<K extends keyof ProvidedContext>(project: TestProject, key: K, value: ProvidedContext[K]): void {
  project.provide(key, value);
}

async function stopUntaken(pool: Pool): Promise<void> {
  for (const w of pool.pending.splice(0)) await (await w.catch(() => null))?.close();
}

export default async function setup(project: TestProject) {
  let pool = pools[POOL];
  if (!pool) {
    const { startWorld } = await import('./test-world.js');
    const pending = Array.from({ length: Math.max(1, worldsWanted(project)) }, () => startWorld());
    // A world that fails to start fails the project that takes it (an untaken one is only stopped).
    for (const w of pending) w.catch(() => undefined);
    pool = { pending, taken: 0, closed: 0 };
    pools[POOL] = pool;
  }
  const next = pool.pending.shift();
  if (!next) throw new Error('test/global-setup.ts: more worker projects asked for a world than were counted at the start');
  const world = await next;
  pool.taken += 1;
  for (const key of Object.keys(world.values) as (keyof ProvidedContext)[]) provide(project, key, world.values[key]);
  const mine = pool;
  return async () => {
    await world.close();
    mine.closed += 1;
    if (mine.closed === mine.taken) {
      await stopUntaken(mine);
      pools[POOL] = undefined;
    }
  };
}
