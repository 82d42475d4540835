// @ts-check
/**
 * `npm run memtest -- [--turns 40] [--chars 190000] [--quiet-dev]`: where a chat of maximum-size messages puts its
 * memory. Starts the local stack, runs one chat through --turns turns of --chars-character messages (answered at the
 * same size), and reports the Worker runtime's resident memory (workerd's VmRSS) and its V8 heap (used and total, after
 * a garbage collection, through wrangler's inspector) before and after. With --quiet-dev the runtime's Network domain
 * is off (wrangler dev otherwise relays every subrequest chunk to its Node process and keeps them for DevTools).
 * A table on stdout, JSON in bench/results/memtest-<time>.json.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { openInspector } from './lib/scaletest-inspector.mjs';
import { startLocalStack } from './lib/scaletest-stack.mjs';
import { freePort } from './lib/ports.mjs';
import { rec } from './lib/scaletest-client.mjs';
import { workerdRss } from './lib/workerd-procs.mjs';


const ROOT = fileURLToPath(new URL('../', import.meta.url));
const log = (/** @type {string} */ line) => process.stderr.write(`[memtest] ${line}\n`);
const { values: args } = parseArgs({
  options: { turns: { type: 'string', default: '40' }, chars: { type: 'string', default: '190000' }, 'quiet-dev': { type: 'boolean', default: false } },
});
const turns = Number(args.turns);
const chars = Number(args.chars);
if (!Number.isInteger(turns) || turns < 1 || !Number.isInteger(chars) || chars < 1 || chars > 199_000) {
  process.stderr.write('usage: npm run memtest -- [--turns 40] [--chars 190000 (at most 199000)] [--quiet-dev]\n');
  process.exit(1);
}


async function main() {
  const inspectorPort = await freePort();
  const stack = await startLocalStack({ root: ROOT, wranglerArgs: ['--inspector-port', String(inspectorPort)], log });
  try {
    const inspector = await openInspector(inspectorPort);
    if (args['quiet-dev']) await inspector.send('Network.disable');
    const measure = async () => {
      await inspector.send('HeapProfiler.collectGarbage');
      const heap = await inspector.send('Runtime.getHeapUsage');
      const rss = workerdRss(stack.pid);
      return { rssMb: Math.round((rss[0] ?? 0) / 1024), heapUsedMb: Math.round(Number(heap.usedSize) / 1048576), heapTotalMb: Math.round(Number(heap.totalSize) / 1048576) };
    };
    const call = async (/** @type {string} */ method, /** @type {string} */ p, /** @type {unknown} */ body, /** @type {string | null} */ token) => {
      const r = await fetch(`${stack.url}${p}`, {
        method,
        headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      return { status: r.status, body: /** @type {unknown} */ (await r.json().catch(() => null)) };
    };
    const first = await call('POST', '/api/v2/users/first', { email: 'mem@example.com', username: 'mem', password: 'memtest-password' }, null);
    const token = String(rec(first.body).session_token);
    await call('POST', '/api/v2/chats/providers', { provider: 'openai-compat', base_url: stack.mockBaseUrl }, token);
    // Room for the whole history, no compaction: the model gets every message, as in the report this measures.
    await call('POST', '/api/v2/chats/model-configs', { provider: 'openai-compat', model: 'mock-echo', context_limit: 10_000_000, compression_threshold: 100, is_default: true }, token);
    const before = await measure();
    log(`before: ${JSON.stringify(before)}`);
    const text = (/** @type {number} */ i) => `${i} ${'x'.repeat(chars - 12)}`;
    const created = await call('POST', '/api/v2/chats', { content: text(0) }, token);
    const chatId = String(rec(created.body).id);
    const idle = async () => {
      for (;;) {
        const r = await call('GET', `/api/v2/chats/${chatId}`, undefined, token);
        const status = rec(r.body).status;
        if (status === 'waiting') return;
        if (status === 'error') throw new Error(`the turn failed: ${JSON.stringify(rec(r.body).last_error)}`);
        await new Promise((res) => setTimeout(res, 100));
      }
    };
    await idle();
    for (let i = 1; i < turns; i++) {
      const r = await call('POST', `/api/v2/chats/${chatId}/messages`, { content: text(i) }, token);
      if (r.status !== 201) throw new Error(`turn ${i}: ${r.status} ${JSON.stringify(r.body)}`);
      await idle();
    }
    const after = await measure();
    const stats = await call('GET', `/api/v2/chats/${chatId}/stream-stats`, undefined, token);
    log(`after: ${JSON.stringify(after)}; the chat's object: ${JSON.stringify(stats.body)}`);
    inspector.close();
    const row = (/** @type {string} */ k, /** @type {string} */ a, /** @type {string} */ b) => `| ${k} | ${a} | ${b} |`;
    process.stdout.write(
      [
        `\n${turns} turns of ${chars.toLocaleString('en')}-character messages, one chat, Network domain ${args['quiet-dev'] ? 'off' : 'on'}`,
        '| | before | after |',
        '|---|---|---|',
        row('workerd resident memory (VmRSS)', `${before.rssMb} MB`, `${after.rssMb} MB`),
        row('V8 heap used (after GC)', `${before.heapUsedMb} MB`, `${after.heapUsedMb} MB`),
        row('V8 heap total', `${before.heapTotalMb} MB`, `${after.heapTotalMb} MB`),
        '',
      ].join('\n'),
    );
    const out = path.join(ROOT, 'bench', 'results');
    await mkdir(out, { recursive: true });
    const file = path.join(out, `memtest-${new Date().toISOString().replace(/[-:]/g, '').replace(/\..*$/, '')}.json`);
    await writeFile(file, `${JSON.stringify({ turns, chars, networkDomain: !args['quiet-dev'], before, after, chatStats: stats.body }, null, 2)}\n`);
    log(`results: ${path.relative(ROOT, file)}`);
  } finally {
    await stack.stop();
  }
}

main().then(
  () => process.exit(0),
  (e) => {
    process.stderr.write(`[memtest] ${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(1);
  },
);
