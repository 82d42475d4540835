// @ts-check
/**
 * `npm run bench:files`: chat file uploads through the local stack (wrangler dev: workerd, miniflare's R2, Postgres).
 * Prints the upload throughput and the p50/p90 latency of --runs sequential 5 MiB uploads, and the Worker runtime's
 * memory (workerd's VmRSS sampled every 20 ms, and the V8 heap after a GC) before and at its peak during 10 concurrent
 * 10 MiB uploads: the upload streams, so the peak should not grow by 10 x 10 MiB.
 *
 * Options: --runs N (default 20) --concurrency N (default 10) --quiet-dev (the inspector's Network domain off).
 * Writes bench/results/bench-files-<time>.json.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { freePort } from './lib/ports.mjs';
import { openInspector } from './lib/scaletest-inspector.mjs';
import { startLocalStack } from './lib/scaletest-stack.mjs';
import { rec } from './lib/scaletest-client.mjs';
import { quantile } from './lib/scaletest-report.mjs';
import { workerdRss } from './lib/workerd-procs.mjs';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const MiB = 1024 * 1024;
const log = (/** @type {string} */ line) => process.stderr.write(`[bench-files] ${line}\n`);
const { values: args } = parseArgs({
  options: { runs: { type: 'string', default: '20' }, concurrency: { type: 'string', default: '10' }, 'quiet-dev': { type: 'boolean', default: false } },
});
const runs = Number(args.runs);
const concurrency = Number(args.concurrency);
if (!Number.isInteger(runs) || runs < 1 || !Number.isInteger(concurrency) || concurrency < 1) {
  process.stderr.write('usage: npm run bench:files -- [--runs 20] [--concurrency 10] [--quiet-dev]\n');
  process.exit(1);
}

async function main() {
  const inspectorPort = await freePort();
  // PG_CONNECT_TIMEOUT_MS 30 s (the deployment's is 5 s): with 10 uploads streaming at once on this shared 2-core
  // machine, the later requests' first Postgres connect (the session check, before any byte is read) took longer
  // than 5 s and answered 503 ("connecting to the database timed out after 5000 ms" in the stack's log).
  const stack = await startLocalStack({
    root: ROOT,
    wranglerArgs: ['--inspector-port', String(inspectorPort), '--var', 'PG_CONNECT_TIMEOUT_MS:30000'],
    log,
  });
  try {
    const inspector = await openInspector(inspectorPort);
    if (args['quiet-dev']) await inspector.send('Network.disable');
    /**
     * An inspector call, with the Worker nudged (GET /healthz every 500 ms) until it answers. Why: after the burst of
     * concurrent uploads, workerd left the inspector's HeapProfiler.collectGarbage unanswered until the isolate got
     * its next request (the uploads had all answered 201 and workerd sat idle; one request made the answer arrive at
     * once). Without the nudge the bench hung there forever. A call still unanswered after 60 s fails the run.
     * @param {string} method
     */
    const ask = async (method) => {
      const poke = setInterval(() => {
        fetch(`${stack.url}/healthz`).then((r) => r.arrayBuffer(), () => undefined).catch(() => undefined);
      }, 500);
      /** @type {ReturnType<typeof setTimeout> | undefined} */
      let timer;
      try {
        return await Promise.race([
          inspector.send(method),
          new Promise((_, reject) => {
            timer = setTimeout(() => reject(new Error(`inspector: no answer to ${method} within 60 s`)), 60_000);
          }),
        ]);
      } finally {
        clearInterval(poke);
        clearTimeout(timer);
      }
    };
    const heap = async () => {
      await ask('HeapProfiler.collectGarbage');
      const h = rec(await ask('Runtime.getHeapUsage'));
      return Math.round(Number(h.usedSize) / MiB);
    };
    const rssMb = () => Math.round((workerdRss(stack.pid)[0] ?? 0) / 1024);
    const first = await fetch(`${stack.url}/api/v2/users/first`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ email: 'files@example.com', username: 'files', password: 'bench-files-password' }),
    });
    const token = String(rec(await first.json()).session_token);
    const upload = async (/** @type {Blob} */ bytes, /** @type {string} */ name) => {
      const started = performance.now();
      const r = await fetch(`${stack.url}/api/v2/chats/files?name=${name}`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'text/plain' },
        body: bytes,
      });
      const body = await r.text();
      if (r.status !== 201) throw new Error(`upload ${name}: ${r.status} ${body}`);
      const ms = performance.now() - started;
      log(`${name}: ${Math.round(ms)} ms`);
      return ms;
    };
    const five = new Blob([new Uint8Array(5 * MiB).fill(0x61)]);
    await upload(five, 'warmup.txt');
    /** @type {number[]} */
    const times = [];
    for (let i = 0; i < runs; i++) times.push(await upload(five, `five-${i}.txt`));
    const total = times.reduce((a, b) => a + b, 0);
    const throughput = (runs * 5) / (total / 1000);

    const ten = new Blob([new Uint8Array(10 * MiB).fill(0x62)]);
    const before = { rssMb: rssMb(), heapMb: await heap() };
    let peak = before.rssMb;
    const sampler = setInterval(() => {
      peak = Math.max(peak, rssMb());
    }, 20);
    const started = performance.now();
    const parallel = await Promise.all(Array.from({ length: concurrency }, (_, i) => upload(ten, `ten-${i}.txt`)));
    const wall = performance.now() - started;
    clearInterval(sampler);
    log('concurrent uploads done; the heap after a GC');
    const after = { rssMb: rssMb(), heapMb: await heap() };
    inspector.close();
    const result = {
      fiveMiB: { runs, p50Ms: Math.round(quantile(times, 0.5)), p90Ms: Math.round(quantile(times, 0.9)), throughputMiBs: Math.round(throughput * 10) / 10 },
      concurrent: { uploads: concurrency, sizeMiB: 10, wallMs: Math.round(wall), slowestMs: Math.round(Math.max(...parallel)), before, peakRssMb: peak, after },
    };
    process.stdout.write(
      [
        '',
        `5 MiB uploads, ${runs} one after the other: p50 ${result.fiveMiB.p50Ms} ms, p90 ${result.fiveMiB.p90Ms} ms, ${result.fiveMiB.throughputMiBs} MiB/s`,
        `${concurrency} concurrent 10 MiB uploads: ${result.concurrent.wallMs} ms in all (slowest ${result.concurrent.slowestMs} ms)`,
        '| workerd | before | peak during | after |',
        '|---|---|---|---|',
        `| resident memory (VmRSS) | ${before.rssMb} MB | ${peak} MB | ${after.rssMb} MB |`,
        `| V8 heap used (after GC) | ${before.heapMb} MB | | ${after.heapMb} MB |`,
        '',
      ].join('\n'),
    );
    const out = path.join(ROOT, 'bench', 'results');
    await mkdir(out, { recursive: true });
    const file = path.join(out, `bench-files-${new Date().toISOString().replace(/[-:]/g, '').replace(/\..*$/, '')}.json`);
    await writeFile(file, `${JSON.stringify(result, null, 2)}\n`);
    log(`results: ${path.relative(ROOT, file)}`);
  } catch (e) {
    // The stack's log stays for a failed run: which request failed, and why, is in it.
    await stack.stop({ keep: 'log' });
    log(`the stack's log: ${path.relative(ROOT, stack.logFile)}`);
    throw e;
  }
  await stack.stop();
}

main().then(
  () => process.exit(0),
  (e) => {
    process.stderr.write(`[bench-files] ${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(1);
  },
);
