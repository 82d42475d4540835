// @ts-check
/**
 * The stages of a turn in a V8 CPU profile of the Worker's isolate, for `npm run bench:turn`. Each sample's self time
 * goes to one stage, decided by the frames on its stack: of the stage markers found anywhere on the stack, the one
 * with the highest priority wins (a Postgres driver frame under `ChatStore.finish` is the final write; a socket send
 * under it is the fan-out). Samples with no JavaScript stack are V8's and workerd's own: `(program)` (native work:
 * RPC marshalling, sockets, streams, timers) and `(garbage collector)`; they are reported apart, not guessed.
 */
import { moduleResolver, selfTimes } from './scaletest-inspector.mjs';

/**
 * A stage and the frames that mark it, highest priority first.
 * @type {{ stage: string, test: (fn: string, mod: string) => boolean }[]}
 */
export const STAGES = [
  { stage: 'fan-out (frames to sockets)', test: (_fn, mod) => mod === 'durable-objects/room/stream-hub.ts' },
  {
    stage: 'model stream (AI SDK, parse, zod)',
    test: (_fn, mod) => mod === 'ai' || mod.startsWith('@ai-sdk/') || mod === 'eventsource-parser' || mod.startsWith('durable-objects/llm/'),
  },
  {
    stage: 'final write (answer, outbox)',
    test: (fn, mod) => (mod === 'durable-objects/room/chat-store.ts' && fn === 'finish') || mod === 'durable-objects/room/outbox-writer.ts' || mod === 'durable-objects/room/outbox.ts',
  },
  { stage: 'insert (the user message)', test: (fn, mod) => (mod === 'durable-objects/room/chat-store.ts' && fn === 'insert') || mod === 'durable-objects/room/chat-writer.ts' },
  { stage: 'alarm and storage', test: (fn, mod) => mod === 'durable-objects/room/alarm-clock.ts' || (fn === 'alarm' && mod.startsWith('durable-objects/')) },
  { stage: 'object: RPC entry, guard, turn bookkeeping', test: (_fn, mod) => mod.startsWith('durable-objects/') },
  { stage: 'Worker: route and guard', test: (_fn, mod) => mod.startsWith('functions/') || mod === 'hono' },
];
/** Self time of stacks with no project frame (callbacks of a library: a socket's data, a resolved promise), by module. */
const OTHER_JS = 'no project frame on the stack';

/**
 * @param {{ nodes: import('./scaletest-inspector.mjs').ProfileNode[] & { children?: number[] }[], samples?: number[], timeDeltas?: number[] }} profile
 * @param {string | null} bundle  the file the profile's `index.js` stands for
 * @returns {{ busyUs: number, stages: { stage: string, us: number, top: { fn: string, us: number }[] }[] }}  self time by
 *   stage, with each stage's costliest functions (name [module:line]); busy leaves out (idle)
 */
export function stagesOf(profile, bundle) {
  const moduleOf = moduleResolver(bundle);
  /** @type {Map<number, { fn: string, url: string, line: number, children: number[] }>} */
  const nodes = new Map();
  /** @type {Map<number, number>} */
  const parent = new Map();
  for (const n of profile.nodes) {
    const cf = n.callFrame;
    const children = /** @type {{ children?: number[] }} */ (n).children ?? [];
    nodes.set(n.id, { fn: cf.functionName, url: cf.url, line: cf.lineNumber, children });
    for (const c of children) parent.set(c, n.id);
  }
  const self = selfTimes(profile);
  /** @type {Map<number, string>} a node's stage, memoized (stacks share their roots) */
  const memo = new Map();
  /** @param {number} id */
  const stageOf = (id) => {
    const known = memo.get(id);
    if (known !== undefined) return known;
    let best = STAGES.length;
    let leafModule = '';
    for (let cur = /** @type {number | undefined} */ (id); cur !== undefined; cur = parent.get(cur)) {
      const n = nodes.get(cur);
      if (!n || !n.url) continue;
      const mod = moduleOf(n.url, n.line);
      leafModule ||= mod;
      const i = STAGES.findIndex((s) => s.test(n.fn, mod));
      if (i >= 0 && i < best) best = i;
    }
    const stage = STAGES[best]?.stage ?? `${OTHER_JS}: ${leafModule || '?'}`;
    memo.set(id, stage);
    return stage;
  };
  /** @type {Map<string, number>} */
  const by = new Map();
  /** @type {Map<string, Map<string, number>>} stage -> function -> self time */
  const fns = new Map();
  let busy = 0;
  for (const [id, us] of self) {
    const n = nodes.get(id);
    if (!n || us <= 0 || n.fn === '(idle)') continue;
    busy += us;
    const special = /^\((program|garbage collector|root)\)$/.test(n.fn);
    const stage = special ? (n.fn === '(garbage collector)' ? 'garbage collection' : 'native: workerd and V8 (RPC, sockets, streams, timers)') : stageOf(id);
    by.set(stage, (by.get(stage) ?? 0) + us);
    const fn = `${n.fn || '(anonymous)'} [${n.url ? `${moduleOf(n.url, n.line)}:${n.line + 1}` : 'native'}]`;
    const m = fns.get(stage) ?? new Map();
    m.set(fn, (m.get(fn) ?? 0) + us);
    fns.set(stage, m);
  }
  const top = (/** @type {string} */ stage) =>
    [...(fns.get(stage) ?? new Map()).entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, 8)
      .map(([fn, us]) => ({ fn, us }));
  return { busyUs: busy, stages: [...by.entries()].map(([stage, us]) => ({ stage, us, top: top(stage) })).sort((a, b) => b.us - a.us) };
}
