// @ts-check
/**
 * `npm run bench:fanout`: one shared chat watched by --viewers sockets (default 1,000; all of one viewer user, the
 * chat shared with them) through --turns long turns (default 20) of the mock LLM, on the local stack. Prints, over
 * every viewer socket: durable messages lost and duplicated compared with GET /messages, the p50/p99 delay from the
 * first socket (owner or viewer) seeing a turn's first part to each viewer's socket seeing it, and workerd's CPU time (user + system,
 * from /proc, the whole runtime: the chat object and the Worker) per frame sent to the viewers.
 *
 * Options: --viewers N (default 1000) --turns N (default 20) --chunks N (parts per answer, default 50)
 * --chunk-delay-ms N (default 20). Writes bench/results/bench-fanout-<time>.json.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Api, mapLimit, signInOwner } from './lib/scaletest-client.mjs';
import { serverMessageIds } from './lib/scaletest-chat-run.mjs';
import { startLocalStack } from './lib/scaletest-stack.mjs';
import { quantile } from './lib/scaletest-report.mjs';
import { workerdCpuSeconds } from './lib/workerd-procs.mjs';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const log = (/** @type {string} */ line) => process.stderr.write(`[bench-fanout] ${line}\n`);
const { values: args } = parseArgs({
  options: {
    viewers: { type: 'string', default: '1000' },
    turns: { type: 'string', default: '20' },
    chunks: { type: 'string', default: '50' },
    'chunk-delay-ms': { type: 'string', default: '20' },
  },
});
const viewers = Number(args.viewers);
const turns = Number(args.turns);
const chunks = Number(args.chunks);
const chunkDelay = Number(args['chunk-delay-ms']);
if (![viewers, turns, chunks].every((n) => Number.isInteger(n) && n >= 1) || !Number.isInteger(chunkDelay) || chunkDelay < 0) {
  process.stderr.write('usage: npm run bench:fanout -- [--viewers 1000] [--turns 20] [--chunks 50] [--chunk-delay-ms 20]\n');
  process.exit(1);
}

/**
 * A socket watching the chat: the durable ids it saw (duplicates counted), when it saw each turn's first part, and its frames.
 * @param {Api} api @param {string} chatId
 */
async function watcher(api, chatId) {
  const w = { seen: /** @type {number[]} */ ([]), ids: new Set(), dups: 0, frames: 0, firstPart: /** @type {Map<number, number>} */ (new Map()), parts0: 0, closed: 0 };
  const stream = api.client.stream(chatId, { afterId: 0 });
  stream.on('frame', (f) => {
    const now = performance.now();
    w.frames += 1;
    for (const ev of f.events) {
      if (ev.type === 'message') {
        if (w.ids.has(ev.message.id)) w.dups += 1;
        else {
          w.ids.add(ev.message.id);
          w.seen.push(ev.message.id);
        }
      } else if (ev.type === 'message_part' && ev.message_part.seq === 0) {
        // Each turn's answer starts at seq 0: the socket numbers the turns itself, so a late part is never counted
        // as the next turn's.
        w.parts0 += 1;
        if (!w.firstPart.has(w.parts0)) w.firstPart.set(w.parts0, now);
      }
    }
  });
  stream.on('disconnect', () => {
    w.closed += 1;
  });
  await stream.until((x) => x.connected, { timeoutMs: 120_000 });
  return { w, stream };
}

async function main() {
  const stack = await startLocalStack({ root: ROOT, env: { CHATD_NO_SEED: '0' }, log });
  const owner = new Api(stack.url, { maxSockets: 16 });
  const viewerApi = new Api(stack.url, { maxSockets: 64 });
  try {
    await signInOwner(owner, { email: 'fanout@example.com', username: 'fanout', password: 'bench-fanout-password' });
    const viewerWho = { email: 'viewer@example.com', username: 'viewer', password: 'bench-fanout-viewer' };
    const viewer = await owner.client.createUser({ ...viewerWho, roles: ['member'] });
    viewerApi.signIn((await viewerApi.client.login({ email: viewerWho.email, password: viewerWho.password })).session_token);
    const chat = await owner.client.createChat({ content: 'fan-out [[mock chunks=2]]' });
    await owner.client.updateChatAcl(chat.id, { users: { [String(viewer.id)]: 'viewer' } });
    const own = await watcher(owner, chat.id);
    await own.stream.until((x) => x.status?.status === 'waiting', { timeoutMs: 120_000 });
    log(`opening ${viewers} viewer sockets`);
    const watching = await mapLimit(Array.from({ length: viewers }, (_, i) => i), 50, () => watcher(viewerApi, chat.id));
    log(`${watching.length} viewer sockets open; ${turns} turns of ${chunks} parts`);
    // The owner's socket saw the chat's first turn; the viewers' numbering starts with the first timed turn.
    own.w.parts0 = 0;
    own.w.firstPart.clear();
    const framesBefore = watching.reduce((n, x) => n + x.w.frames, 0);
    const cpuBefore = workerdCpuSeconds(stack.pid);
    const started = performance.now();
    for (let t = 1; t <= turns; t++) {
      await owner.client.sendMessage(chat.id, { content: `turn ${t} [[mock chunks=${chunks} chunk_delay_ms=${chunkDelay}]]` });
      await own.stream.until((x) => x.status?.status === 'waiting' && own.w.firstPart.has(t), { timeoutMs: 300_000 });
    }
    const server = await serverMessageIds(owner, chat.id);
    const last = server.at(-1) ?? 0;
    await Promise.all(watching.map((x) => x.stream.until(() => x.w.ids.has(last), { timeoutMs: 120_000 }).catch(() => undefined)));
    const wallS = (performance.now() - started) / 1000;
    const cpu = workerdCpuSeconds(stack.pid) - cpuBefore;
    const frames = watching.reduce((n, x) => n + x.w.frames, 0) - framesBefore;
    const serverSet = new Set(server);
    const lost = watching.reduce((n, x) => n + server.filter((id) => !x.w.ids.has(id)).length, 0);
    const phantom = watching.reduce((n, x) => n + x.w.seen.filter((id) => !serverSet.has(id)).length, 0);
    const dups = watching.reduce((n, x) => n + x.w.dups, 0);
    const closes = watching.reduce((n, x) => n + x.w.closed, 0);
    /** @type {number[]} */
    const delays = [];
    for (let t = 1; t <= turns; t++) {
      // The reference: the first socket (owner or viewer) that saw the turn's first part. All sockets live in this one
      // Node process, so the owner's socket is not ahead of the others by construction; the spread from the first
      // arrival to each viewer's is the fan-out's delay (plus this process' own handling of 1,000 sockets).
      const arrivals = [own, ...watching].flatMap((x) => {
        const at = x.w.firstPart.get(t);
        return at === undefined ? [] : [at];
      });
      if (arrivals.length === 0) continue;
      const ref = Math.min(...arrivals);
      for (const x of watching) {
        const at = x.w.firstPart.get(t);
        if (at !== undefined) delays.push(at - ref);
      }
    }
    const result = {
      viewers,
      turns,
      chunks,
      messages: server.length,
      lost,
      duplicated: dups,
      phantom,
      unexpectedCloses: closes,
      delayMs: { samples: delays.length, p50: Math.round(quantile(delays, 0.5)), p99: Math.round(quantile(delays, 0.99)), max: Math.round(Math.max(0, ...delays)) },
      framesToViewers: frames,
      workerdCpuSeconds: Math.round(cpu * 100) / 100,
      cpuMicrosPerFrame: frames > 0 ? Math.round((cpu * 1e6) / frames) : null,
      wallSeconds: Math.round(wallS),
    };
    process.stdout.write(
      [
        '',
        `fan-out: ${viewers} viewer sockets of one shared chat, ${turns} turns of ${chunks} parts (${server.length} durable messages)`,
        `lost ${lost}, duplicated ${dups}, not on the server ${phantom}, unexpected closes ${closes}`,
        `delay first socket's first part → each viewer's (${delays.length} samples): p50 ${result.delayMs.p50} ms, p99 ${result.delayMs.p99} ms, max ${result.delayMs.max} ms`,
        `frames sent to viewers ${frames}; workerd CPU ${result.workerdCpuSeconds} s → ${String(result.cpuMicrosPerFrame)} µs per frame; wall ${result.wallSeconds} s`,
        '',
      ].join('\n'),
    );
    for (const x of [own, ...watching]) void x.stream.close();
    const out = path.join(ROOT, 'bench', 'results');
    await mkdir(out, { recursive: true });
    const file = path.join(out, `bench-fanout-${new Date().toISOString().replace(/[-:]/g, '').replace(/\..*$/, '')}.json`);
    await writeFile(file, `${JSON.stringify(result, null, 2)}\n`);
    log(`results: ${path.relative(ROOT, file)}`);
  } finally {
    owner.close();
    viewerApi.close();
    await stack.stop();
  }
}

main().then(
  () => process.exit(0),
  (e) => {
    process.stderr.write(`[bench-fanout] ${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(1);
  },
);
