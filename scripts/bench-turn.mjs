// @ts-check
/**
 * `npm run bench:turn`: the CPU of one turn, split by stage. One chat (one object) on the local stack (wrangler dev,
 * the mock LLM, Postgres; console relay off as in `scaletest --quiet-dev`) is driven through N turns at a time, one
 * after the other, and workerd's CPU (user + system, from /proc: the Worker and its objects, not wrangler's proxy) is
 * read before and after each phase. The phases differ in one thing each, so their differences are the stages' costs,
 * native work included:
 *   - route and guard:   GET /users/me (authenticated, no object, no Postgres);
 *   - RPC to the object: GET /chats/{id} minus the above (route, guard, RPC in and out, the object's guard);
 *   - a turn:            POST a message answered in 1 chunk, one socket watching, until the socket sees the answer;
 *   - per chunk:         the same with --chunks chunks, minus the 1-chunk turn, per extra chunk (model stream, delta,
 *                        frame to one socket);
 *   - per socket-frame:  the --chunks turn with --sockets sockets minus one socket, per extra frame sent.
 * Then the 1-chunk turn again under the V8 profiler: its JavaScript self time by stage (insert, model call, fan-out,
 * alarm and storage, final write, object, Worker) and the native and GC shares the profile cannot split.
 *
 * Options: --turns N (per phase, default 200) --chunks N (default 41) --sockets N (default 21) --requests N (for the two
 * GET phases, default 2000). Writes bench/results/bench-turn-<time>.json.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { stagesOf } from './lib/bench-turn-stages.mjs';
import { freePort } from './lib/ports.mjs';
import { Api, ensureModel, signInOwner } from './lib/scaletest-client.mjs';
import { devBundle, openInspector } from './lib/scaletest-inspector.mjs';
import { WORKERD_APP, cpuByGroup, gitInfo, sampleProcesses, table } from './lib/scaletest-report.mjs';
import { startLocalStack } from './lib/scaletest-stack.mjs';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const log = (/** @type {string} */ line) => process.stderr.write(`[bench-turn] ${line}\n`);
const { values: args } = parseArgs({
  options: {
    turns: { type: 'string', default: '200' },
    chunks: { type: 'string', default: '41' },
    sockets: { type: 'string', default: '21' },
    requests: { type: 'string', default: '2000' },
  },
});
const turns = Number(args.turns);
const chunks = Number(args.chunks);
const sockets = Number(args.sockets);
const requests = Number(args.requests);
if (![turns, requests].every((n) => Number.isInteger(n) && n >= 10) || !Number.isInteger(chunks) || chunks < 2 || !Number.isInteger(sockets) || sockets < 2) {
  process.stderr.write('usage: npm run bench:turn -- [--turns 200] [--chunks 41] [--sockets 21] [--requests 2000]\n');
  process.exit(1);
}

/** @typedef {ReturnType<Api['client']['stream']>} Stream */
/** Turns per chat: see newRoom. */
const PER_CHAT = 50;

async function main() {
  const inspectorPort = await freePort();
  const stack = await startLocalStack({ root: ROOT, wranglerArgs: ['--inspector-port', String(inspectorPort), '--log-level', 'warn'], log });
  const publicPort = Number(new URL(stack.url).port);
  const api = new Api(stack.url, { maxSockets: 4 });
  /** The chat the turns go to, and its sockets (the first one counts frames and waits for answers). */
  const room = { id: '', streams: /** @type {Stream[]} */ ([]), frames: 0 };
  const inspector = await openInspector(inspectorPort);
  try {
    // wrangler relays every console line of the isolate to its Node process: off, as scaletest --quiet-dev does.
    await inspector.send('Runtime.disable');
    await signInOwner(api, { email: 'bench-turn@example.com', username: 'benchturn', password: 'bench-turn-password' });
    await ensureModel(api, { mockBaseUrl: stack.mockBaseUrl, modelConfigId: null, log });
    const first = () => /** @type {Stream} */ (room.streams[0]);
    const answers = () => first().messages.filter((m) => m.role === 'assistant').length;
    /** One turn: the message, then the answer on the first socket and the chat idle again. @param {number} k */
    const turn = async (k) => {
      const before = answers();
      await api.client.sendMessage(room.id, { content: `go [[mock chunks=${k}]]` });
      await first().until((x) => answers() > before && x.status?.status === 'waiting', { timeoutMs: 60_000 });
    };
    /**
     * A new chat with `n` sockets, its first answer (and title) done. A chat keeps at most PER_CHAT turns: its history
     * then stays within the object's message cache (256 messages), as a chat of the scale test's does; a longer one
     * reads its history from Postgres on every turn, which would be measured instead of the turn.
     * @param {number} n
     */
    const newRoom = async (n) => {
      for (const x of room.streams.splice(0)) await x.close();
      room.id = (await api.client.createChat({ content: 'warm-up [[mock chunks=1]]' })).id;
      for (let i = 0; i < n; i++) {
        const x = api.client.stream(room.id, { afterId: 0 });
        if (i === 0) {
          x.on('frame', () => {
            room.frames += 1;
          });
        }
        await x.until((y) => y.connected, { timeoutMs: 60_000 });
        room.streams.push(x);
      }
      await first().until((x) => x.status?.status === 'waiting' && answers() === 1, { timeoutMs: 60_000 });
      for (let i = 0; i < 3; i++) await turn(1);
    };
    /**
     * workerd CPU in ms per operation over n operations (and the frames the first socket got per operation), in
     * batches of PER_CHAT, each on a new chat with `socketsOpen` sockets (made between the measured batches).
     * @param {string} label @param {number} n @param {number} socketsOpen @param {() => Promise<unknown>} op
     */
    const phase = async (label, n, socketsOpen, op) => {
      let cpuS = 0;
      let wall = 0;
      let frames = 0;
      for (let done = 0; done < n; ) {
        await newRoom(socketsOpen);
        const batch = Math.min(PER_CHAT, n - done);
        const f0 = room.frames;
        const a = sampleProcesses({ rootPid: stack.pid, publicPort });
        const t0 = performance.now();
        for (let i = 0; i < batch; i++) await op();
        wall += performance.now() - t0;
        const cpu = cpuByGroup(a, sampleProcesses({ rootPid: stack.pid, publicPort }));
        cpuS += cpu?.groups.find((g) => g.group === WORKERD_APP)?.cpuSeconds ?? NaN;
        frames += room.frames - f0;
        done += batch;
      }
      const r = { label, n, cpuMsPerOp: (cpuS * 1000) / n, wallMsPerOp: wall / n, framesPerOp: frames / n };
      log(`${label}: ${r.cpuMsPerOp.toFixed(3)} ms CPU, ${r.wallMsPerOp.toFixed(2)} ms wall per op`);
      return r;
    };
    await newRoom(1);
    for (let i = 0; i < 50; i++) await api.client.getChat(room.id); // warm: JIT, caches, connections
    const me = await phase('GET /users/me', requests, 1, () => api.client.me());
    const get = await phase('GET /chats/{id}', requests, 1, () => api.client.getChat(room.id));
    const t1 = await phase('turn, 1 chunk, 1 socket', turns, 1, () => turn(1));
    const tk = await phase(`turn, ${chunks} chunks, 1 socket`, turns, 1, () => turn(chunks));
    const tks = await phase(`turn, ${chunks} chunks, ${sockets} sockets`, turns, sockets, () => turn(chunks));
    // The profile: the 1-chunk turn, on its own (the profiler's own cost is not in the figures above).
    await newRoom(1);
    await inspector.send('Profiler.enable');
    await inspector.send('Profiler.start');
    for (let i = 0; i < turns; i++) {
      if (i > 0 && i % PER_CHAT === 0) await newRoom(1);
      await turn(1);
    }
    const { profile } = /** @type {{ profile: Parameters<typeof stagesOf>[0] }} */ (await inspector.send('Profiler.stop'));
    const prof = stagesOf(profile, devBundle(ROOT));
    // And the plainest authenticated request, for what route and guard cost on their own.
    await inspector.send('Profiler.start');
    for (let i = 0; i < requests; i++) await api.client.me();
    const meProfile = /** @type {{ profile: Parameters<typeof stagesOf>[0] }} */ (await inspector.send('Profiler.stop')).profile;
    const meProf = stagesOf(meProfile, devBundle(ROOT));

    const extraFrames = tks.framesPerOp * (sockets - 1); // every socket gets the frames the first one gets
    const perChunk = (tk.cpuMsPerOp - t1.cpuMsPerOp) / (chunks - 1);
    const perSocketFrame = extraFrames > 0 ? (tks.cpuMsPerOp - tk.cpuMsPerOp) / extraFrames : NaN;
    const f3 = (/** @type {number} */ v) => (Number.isFinite(v) ? v.toFixed(3) : '–');
    const rows = [
      ['route and guard (GET /users/me)', f3(me.cpuMsPerOp), 'per request'],
      ['RPC in and out + the object\'s guard (GET /chats/{id} − /users/me)', f3(get.cpuMsPerOp - me.cpuMsPerOp), 'per call'],
      ['a whole turn: POST, 1-chunk answer, 1 socket', f3(t1.cpuMsPerOp), `per turn (${t1.wallMsPerOp.toFixed(1)} ms wall, ${t1.framesPerOp.toFixed(1)} frames)`],
      ['model stream + delta + frame to 1 socket', f3(perChunk), `per chunk (${chunks}-chunk turn ${f3(tk.cpuMsPerOp)} ms, ${tk.framesPerOp.toFixed(1)} frames)`],
      ['fan-out to one more socket', f3(perSocketFrame), `per frame and socket (${sockets} sockets: ${f3(tks.cpuMsPerOp)} ms per turn)`],
    ];
    // The profile's own clock over-counts (its busy time per turn is above the turn's CPU from /proc, the profiler's
    // own cost included): its shares are what it tells, applied to the 1-chunk turn's CPU measured without it.
    const share = (/** @type {number} */ us) => us / Math.max(prof.busyUs, 1);
    const stageRows = prof.stages.map((s) => [s.stage, f3(share(s.us) * t1.cpuMsPerOp), `${(share(s.us) * 100).toFixed(1)}%`]);
    const git = gitInfo(ROOT);
    process.stdout.write(
      [
        '',
        `bench:turn: one chat, ${turns} turns per phase, commit ${git.commit ?? '?'}${git.dirty ? ' (dirty)' : ''}; workerd CPU from /proc`,
        '',
        table(['stage (differences of phases)', 'CPU ms', ''], rows),
        '',
        table([`the 1-chunk turn's ${f3(t1.cpuMsPerOp)} ms, split by the V8 profile's shares (self time)`, 'ms/turn', 'share'], stageRows),
        '',
      ].join('\n'),
    );
    const out = path.join(ROOT, 'bench', 'results');
    await mkdir(out, { recursive: true });
    const file = path.join(out, `bench-turn-${new Date().toISOString().replace(/[-:]/g, '').replace(/\..*$/, '')}.json`);
    /** A profile's stages as shares, applied to `ms` (CPU per operation measured without the profiler). @param {ReturnType<typeof stagesOf>} p @param {number} ms */
    const split = (p, ms) =>
      p.stages.map((s) => ({ stage: s.stage, share: s.us / Math.max(p.busyUs, 1), msPerOp: (s.us / Math.max(p.busyUs, 1)) * ms, top: s.top.map((f) => ({ fn: f.fn, share: f.us / Math.max(p.busyUs, 1) })) }));
    const result = { git, turns, chunks, sockets, requests, phases: [me, get, t1, tk, tks], perChunkMs: perChunk, perSocketFrameMs: perSocketFrame, profile: { turn: split(prof, t1.cpuMsPerOp), me: split(meProf, me.cpuMsPerOp) } };
    await writeFile(file, `${JSON.stringify(result, null, 2)}\n`);
    await writeFile(file.replace(/\.json$/, '.cpuprofile'), JSON.stringify(profile));
    log(`results: ${path.relative(ROOT, file)} (and the profile: .cpuprofile, for Chrome DevTools)`);
  } finally {
    for (const x of room.streams) await x.close();
    inspector.close();
    api.close();
    await stack.stop();
  }
}

main().then(
  () => process.exit(0),
  (e) => {
    process.stderr.write(`[bench-turn] ${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(1);
  },
);
