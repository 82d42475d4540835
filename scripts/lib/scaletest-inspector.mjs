// @ts-check
/**
 * A DevTools-protocol client for the Worker under `wrangler dev` (its InspectorProxyWorker serves
 * ws://127.0.0.1:<--inspector-port>/ws and forwards to the Worker's isolate, where all Durable Objects of the
 * script run too). Used by the scale test to take a V8 CPU profile of the Worker during the turns, and to switch
 * off the runtime's Network domain, which wrangler dev enables so that every subrequest chunk is relayed to its
 * Node process (there is no command-line switch for it).
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import { isRecord } from './scaletest-client.mjs';

/**
 * @typedef {object} Inspector
 * @property {(method: string, params?: Record<string, unknown>) => Promise<Record<string, unknown>>} send
 * @property {() => void} close
 */

/**
 * @param {number} port
 * @param {number} [timeoutMs]
 * @returns {Promise<Inspector>}
 */
export async function openInspector(port, timeoutMs = 15_000) {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`, { perMessageDeflate: false, maxPayload: 1024 * 1024 * 1024 });
  await new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`inspector on port ${port}: no connection within ${timeoutMs / 1000} s`)), timeoutMs);
    ws.once('open', () => {
      clearTimeout(t);
      resolve(undefined);
    });
    ws.once('error', (e) => {
      clearTimeout(t);
      reject(e);
    });
  });
  let next = 1;
  /** @type {Map<number, { resolve: (v: Record<string, unknown>) => void, reject: (e: Error) => void }>} */
  const pending = new Map();
  ws.on('message', (data) => {
    /** @type {unknown} */
    let msg;
    try {
      msg = JSON.parse(String(data));
    } catch {
      return;
    }
    // Events (the runtime's console, exceptions, network) are ignored; only answers to our calls matter.
    if (!isRecord(msg) || typeof msg.id !== 'number') return;
    const p = pending.get(msg.id);
    if (!p) return;
    pending.delete(msg.id);
    if (isRecord(msg.error)) p.reject(new Error(`inspector: ${String(msg.error.message)}`));
    else p.resolve(isRecord(msg.result) ? msg.result : {});
  });
  ws.on('close', () => {
    for (const p of pending.values()) p.reject(new Error('inspector connection closed'));
    pending.clear();
  });
  return {
    send: (method, params = {}) =>
      new Promise((resolve, reject) => {
        const id = next++;
        pending.set(id, { resolve, reject });
        ws.send(JSON.stringify({ id, method, params }));
      }),
    close: () => {
      ws.terminate();
    },
  };
}

/**
 * @typedef {object} ProfileNode
 * @property {number} id
 * @property {{ functionName: string, url: string, lineNumber: number, columnNumber: number }} callFrame
 */

/**
 * The bundle wrangler built, split into its modules by esbuild's `// <path>` markers.
 * @param {string} file
 * @returns {{ line: number, module: string }[]} module start lines (0-based), ascending
 */
function bundleModules(file) {
  if (!existsSync(file)) return [];
  /** @type {{ line: number, module: string }[]} */
  const out = [];
  const lines = readFileSync(file, 'utf8').split('\n');
  lines.forEach((l, i) => {
    const m = /^\/\/ ((?:\.\.\/)*[\w@.\-/:]+\.(?:[cm]?[jt]s)|node-built-in-modules:[\w/]+)$/.exec(l);
    if (m?.[1]) out.push({ line: i, module: m[1] });
  });
  return out;
}

/**
 * A short name for a bundled module: its npm package, or its path in the project.
 * @param {string} path
 * @returns {string}
 */
function moduleLabel(path) {
  const nm = path.lastIndexOf('node_modules/');
  if (nm >= 0) {
    const rest = path.slice(nm + 'node_modules/'.length).split('/');
    return rest[0]?.startsWith('@') ? `${rest[0]}/${rest[1] ?? ''}` : (rest[0] ?? path);
  }
  return path.replace(/^(\.\.\/)+/, '');
}

/**
 * The bundle `wrangler dev` runs: the newest .wrangler/tmp/dev-* /index.js under the project (the profile names
 * its script just `index.js`).
 * @param {string} root
 * @returns {string | null}
 */
export function devBundle(root) {
  const dir = path.join(root, '.wrangler', 'tmp');
  if (!existsSync(dir)) return null;
  let best = null;
  let bestTime = 0;
  for (const d of readdirSync(dir)) {
    const f = path.join(dir, d, 'index.js');
    if (!d.startsWith('dev-') || !existsSync(f)) continue;
    const t = statSync(f).mtimeMs;
    if (t > bestTime) {
      best = f;
      bestTime = t;
    }
  }
  return best;
}

/**
 * Names the module of a profile's call frame: its npm package or project file (the bundle `index.js` is split by
 * esbuild's markers), `(runtime)` for frames without a URL.
 * @param {string | null} bundle  the file the profile's `index.js` stands for (see devBundle)
 * @returns {(url: string, line: number) => string}
 */
export function moduleResolver(bundle) {
  /** @type {Map<string, { line: number, module: string }[]>} */
  const bundles = new Map();
  /** @param {string} url @param {number} line */
  return (url, line) => {
    if (!url) return '(runtime)';
    const file = url.startsWith('file:') ? fileURLToPath(url) : url === 'index.js' ? bundle : null;
    if (!file) return url;
    let mods = bundles.get(file);
    if (!mods) {
      mods = bundleModules(file);
      bundles.set(file, mods);
    }
    let lo = 0;
    let hi = mods.length - 1;
    let found = '';
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const m = mods[mid];
      if (!m) break;
      if (m.line <= line) {
        found = m.module;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return found ? moduleLabel(found) : '(bundle)';
  };
}

/**
 * Self time per profile node, in microseconds. timeDeltas[i] is the time between samples i-1 and i; it is attributed
 * to sample i, as DevTools does.
 * @param {{ samples?: number[], timeDeltas?: number[] }} profile
 * @returns {Map<number, number>} node id -> microseconds
 */
export function selfTimes(profile) {
  /** @type {Map<number, number>} */
  const self = new Map();
  const samples = profile.samples ?? [];
  const deltas = profile.timeDeltas ?? [];
  for (let i = 0; i < samples.length; i++) {
    const id = samples[i] ?? 0;
    self.set(id, (self.get(id) ?? 0) + Math.max(0, deltas[i] ?? 0));
  }
  return self;
}

/**
 * Self time of a V8 CPU profile by function and by module (npm package or project file).
 * @param {{ nodes: ProfileNode[], samples?: number[], timeDeltas?: number[], startTime: number, endTime: number }} profile
 * @param {string | null} bundle  the file the profile's `index.js` stands for (see devBundle)
 * @returns {{ wallMs: number, idleMs: number, totalMs: number, byModule: { module: string, ms: number, pct: number }[], byFunction: { fn: string, module: string, ms: number, pct: number }[] }}
 *   totalMs and the percentages leave out (idle): they are the isolate's busy time
 */
export function summarizeProfile(profile, bundle) {
  const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = selfTimes(profile);
  const moduleOf = moduleResolver(bundle);
  /** @type {Map<string, number>} */
  const byModule = new Map();
  /** @type {Map<string, { module: string, us: number }>} */
  const byFunction = new Map();
  let total = 0;
  let idle = 0;
  for (const [id, us] of self) {
    const n = nodes.get(id);
    if (!n || us <= 0) continue;
    const cf = n.callFrame;
    if (cf.functionName === '(idle)') {
      idle += us;
      continue;
    }
    const special = /^\((idle|program|garbage collector|root)\)$/.test(cf.functionName);
    const mod = special ? cf.functionName : moduleOf(cf.url, cf.lineNumber);
    total += us;
    byModule.set(mod, (byModule.get(mod) ?? 0) + us);
    const key = `${cf.functionName || '(anonymous)'}  [${mod}${special || !cf.url ? '' : `:${cf.lineNumber + 1}`}]`;
    const f = byFunction.get(key) ?? { module: mod, us: 0 };
    f.us += us;
    byFunction.set(key, f);
  }
  const ms = (/** @type {number} */ us) => Math.round(us / 10) / 100;
  const pct = (/** @type {number} */ us) => Math.round((us / Math.max(total, 1)) * 1000) / 10;
  return {
    wallMs: ms(profile.endTime - profile.startTime),
    idleMs: ms(idle),
    totalMs: ms(total),
    byModule: [...byModule.entries()].sort((a, b) => b[1] - a[1]).map(([module, us]) => ({ module, ms: ms(us), pct: pct(us) })),
    byFunction: [...byFunction.entries()]
      .sort((a, b) => b[1].us - a[1].us)
      .slice(0, 40)
      .map(([fn, f]) => ({ fn, module: f.module, ms: ms(f.us), pct: pct(f.us) })),
  };
}
