/**
 * The Node-side dev tools: the Postgres WebSocket proxy, the port check, and `scripts/dev.mjs` itself.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import WebSocket from 'ws';
import { parseTarget, startPgWsProxy } from '../../scripts/lib/pg-ws-proxy.mjs';
import { assertPortFree, freePort, freePorts } from '../../scripts/lib/ports.mjs';
import { ROOT, startScratchPostgres } from '../../scripts/lib/scratch-db.mjs';
import { startLocalStack } from '../../scripts/lib/scaletest-stack.mjs';

describe('parseTarget', () => {
  it.each([
    ['127.0.0.1:5432', { host: '127.0.0.1', port: 5432 }],
    ['localhost:1', { host: 'localhost', port: 1 }],
    ['[::1]:65535', { host: '::1', port: 65535 }],
  ])('accepts the loopback target %s', (address, want) => {
    expect(parseTarget(address)).toEqual(want);
  });

  it.each([
    [null],
    [''],
    ['10.0.0.1:5432'],
    ['192.168.1.10:5432'],
    ['0.0.0.0:5432'],
    ['example.com:5432'],
    ['localhost.example.com:5432'],
    ['127.0.0.1.nip.io:5432'],
    ['[::2]:5432'],
    ['::1:5432'],
    ['127.0.0.1'],
    ['127.0.0.1:'],
    ['127.0.0.1:0'],
    ['127.0.0.1:65536'],
    ['127.0.0.1:123456'],
    ['127.0.0.1:5432/extra'],
    ['127.0.0.1:54x'],
    [' 127.0.0.1:5432'],
    ['user@127.0.0.1:5432'],
  ])('refuses %j', (address) => {
    expect(parseTarget(address)).toBeNull();
  });
});

describe('the Postgres WebSocket proxy', () => {
  let proxy: Awaited<ReturnType<typeof startPgWsProxy>>;
  const proxyLog: string[] = [];
  const sockets: WebSocket[] = [];
  /** The ports it may forward to: each test adds the one it serves. */
  const ports = new Set<number>();

  beforeAll(async () => {
    proxy = await startPgWsProxy({ port: 0, ports, log: (l) => proxyLog.push(l) });
  });
  afterEach(() => {
    vi.restoreAllMocks();
    for (const s of sockets.splice(0)) s.terminate();
  });
  afterAll(async () => {
    await proxy.close();
  });

  const open = (address: string, opts: { token?: string | null; origin?: string } = {}) => {
    const token = opts.token === undefined ? proxy.token : opts.token;
    const q = `address=${encodeURIComponent(address)}${token === null ? '' : `&token=${encodeURIComponent(token)}`}`;
    const ws = new WebSocket(`ws://127.0.0.1:${proxy.port}/v2?${q}`, opts.origin ? { origin: opts.origin } : {});
    ws.on('error', () => undefined); // a refused upgrade is reported by 'unexpected-response' below
    sockets.push(ws);
    return ws;
  };
  /** The HTTP status of an upgrade the proxy refused. */
  const refused = (ws: WebSocket) =>
    new Promise<number>((resolve, reject) => {
      ws.once('unexpected-response', (_req, res) => {
        resolve(res.statusCode ?? 0);
      });
      ws.once('open', () => {
        reject(new Error('the upgrade was accepted'));
      });
    });
  /** The net.connect calls the proxy made (the ws client's own connection to the proxy left out). */
  const upstreamConnects = (spy: { mock: { calls: unknown[][] } }) =>
    spy.mock.calls
      .map(([o]) => (typeof o === 'object' && o !== null && 'port' in o ? { host: (o as { host?: unknown }).host, port: Number(o.port) } : { port: Number(o) }))
      .filter((o) => o.port !== proxy.port);
  const closed = (ws: WebSocket) =>
    new Promise<{ code: number; reason: string }>((resolve) => {
      ws.once('close', (code, reason) => {
        resolve({ code, reason: reason.toString() });
      });
    });

  it('listens on loopback only', async () => {
    expect(proxy.port).toBeGreaterThan(0);
    await expect(assertPortFree(proxy.port, 'x', 'X')).rejects.toThrow('already in use');
  });

  it.each(['10.0.0.1:5432', 'example.com:5432', ''])(
    'closes a connection to %j with 1008 without opening any TCP connection',
    async (address) => {
      const connect = vi.spyOn(net, 'connect');
      const ws = open(address);
      const { code, reason } = await closed(ws);
      expect(code).toBe(1008);
      expect(reason).toBe('address must be a loopback host:port');
      expect(upstreamConnects(connect)).toEqual([]);
    },
  );

  it.each([
    ['a web page (Origin header), even with the token', { origin: 'https://evil.example' }, 403],
    ['no token', { token: null }, 401],
    ['a wrong token', { token: 'x'.repeat(32) }, 401],
    ['an empty token', { token: '' }, 401],
  ])('refuses %s before the upgrade, opening no TCP connection', async (_name, opts, status) => {
    const port = await freePort();
    ports.add(port);
    const connect = vi.spyOn(net, 'connect');
    expect(await refused(open(`127.0.0.1:${port}`, opts))).toBe(status);
    expect(upstreamConnects(connect)).toEqual([]);
  });

  it('forwards only to the ports it serves (1008 for any other loopback port)', async () => {
    const connect = vi.spyOn(net, 'connect');
    const port = await freePort();
    const { code, reason } = await closed(open(`127.0.0.1:${port}`));
    expect(code).toBe(1008);
    expect(reason).toBe('address must be the Postgres this proxy serves');
    expect(upstreamConnects(connect)).toEqual([]);
  });

  it('forwards bytes both ways to a loopback TCP server, and closes when the server does', async () => {
    const upstream = new Set<net.Socket>();
    const echo = net.createServer((s) => {
      upstream.add(s);
      s.pipe(s);
    });
    await new Promise<void>((resolve) => echo.listen(0, '127.0.0.1', resolve));
    const echoPort = (echo.address() as net.AddressInfo).port;
    ports.add(echoPort);
    try {
      const connect = vi.spyOn(net, 'connect');
      const ws = open(`127.0.0.1:${echoPort}`);
      const received: Buffer[] = [];
      ws.on('message', (data: Buffer) => received.push(data));
      await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
      // Sent at once: the proxy queues them until its TCP connection is up.
      const chunks = [Buffer.from('hello '), randomBytes(256 * 1024), Buffer.from([0, 1, 2, 255])];
      for (const c of chunks) ws.send(c, { binary: true });
      const want = Buffer.concat(chunks);
      await until(() => Buffer.concat(received).length >= want.length);
      expect(Buffer.concat(received).equals(want)).toBe(true);
      expect(upstreamConnects(connect)).toEqual([{ host: '127.0.0.1', port: echoPort }]);

      const done = closed(ws);
      for (const s of upstream) s.destroy();
      expect((await done).code).toBe(1000);
    } finally {
      for (const s of upstream) s.destroy();
      await new Promise((resolve) => echo.close(resolve));
    }
  });

  it('closes with 1011 when nothing listens at the target', async () => {
    const port = await freePort();
    ports.add(port);
    const { code } = await closed(open(`127.0.0.1:${port}`));
    expect(code).toBe(1011);
    expect(proxyLog.some((l) => l.includes(`127.0.0.1:${port}`) && l.includes('ECONNREFUSED'))).toBe(true);
  });
});

describe('freePort and freePorts', () => {
  // A stack takes seven ports at once; the kernel may hand the same ephemeral port to listeners that closed in turn
  // (CI once got "CHATD_PG_PROXY_PORT and CHATD_MOCK_LLM_PORT are both 37879").
  it('never hands out one port twice in a process, in one call or across calls', async () => {
    const many = await freePorts(40);
    const more = [await freePort(), await freePort(), ...(await freePorts(10))];
    const all = [...many, ...more];
    expect(new Set(all).size).toBe(all.length);
    for (const p of all) expect(p).toBeGreaterThan(0);
    // Each was free: something can listen there now.
    await assertPortFree(more[0] ?? 0, 'x', 'X');
  });
});

describe('startLocalStack', () => {
  // A port chosen for a stack is bound by its server seconds later; another process may take it meanwhile (ci-repeat
  // once lost web.test and web-tools.test to "Address already in use" as two stacks started beside the worker suites).
  it('starts again on new ports when a chosen port is taken before the stack binds it, three times at most', async () => {
    const held = net.createServer();
    await new Promise<void>((r) => held.listen(0, '127.0.0.1', r));
    const addr = held.address();
    const port = typeof addr === 'object' && addr ? addr.port : 0;
    const lines: string[] = [];
    let failure = '';
    try {
      // The caller's environment wins over the chosen ports: every attempt meets the held one.
      await startLocalStack({ root: ROOT, env: { CHATD_MCP_PORT: String(port) }, log: (l) => lines.push(l) }).catch((e: unknown) => {
        failure = e instanceof Error ? e.message : String(e);
      });
    } finally {
      held.close();
    }
    expect(failure).toContain(`port ${port} is already in use, so the local MCP server cannot listen there`);
    expect(lines.filter((l) => l.startsWith('starting the stack'))).toHaveLength(3);
    expect(lines.filter((l) => l.startsWith('a port chosen for the stack was taken before it bound it'))).toHaveLength(2);
    // The last attempt's folder keeps its log (named in the message); the retried ones are gone.
    const dir = path.dirname(/last lines of (\S+stack\.log)/.exec(failure)?.[1] ?? '');
    const left = (await readdir(path.join(ROOT, '.data'))).filter((d) => lines.some((l) => l.includes(d)));
    expect(left).toEqual([path.basename(dir)]);
    await rm(dir, { recursive: true, force: true });
  }, 120_000);
});

describe('assertPortFree', () => {
  it('passes for a free port and names the variable when the port is busy', async () => {
    const port = await freePort();
    await expect(assertPortFree(port, 'Postgres', 'CHATD_PG_PORT')).resolves.toBeUndefined();
    const busy = net.createServer();
    await new Promise<void>((resolve) => busy.listen(port, '127.0.0.1', resolve));
    try {
      await expect(assertPortFree(port, 'Postgres', 'CHATD_PG_PORT')).rejects.toThrow(
        `port ${port} is already in use, so Postgres cannot listen there. Stop what holds it or set CHATD_PG_PORT to another port.`,
      );
    } finally {
      await new Promise((resolve) => busy.close(resolve));
    }
  });
});

describe('scripts/dev.mjs', () => {
  let server: Awaited<ReturnType<typeof startScratchPostgres>>;
  let persist: string;
  let mockPort = 0;
  let mcpPort = 0;
  let oidcPort = 0;
  const children: ChildProcess[] = [];

  beforeAll(async () => {
    mockPort = await freePort();
    mcpPort = await freePort();
    oidcPort = await freePort();
    server = await startScratchPostgres('devtools-test');
    persist = await mkdtemp(path.join(os.tmpdir(), 'chatd-dev-test-'));
  });
  afterAll(async () => {
    // Whatever happened, nothing started here outlives the suite.
    for (const c of children) {
      if (c.exitCode === null && c.signalCode === null) {
        c.kill('SIGTERM');
        await new Promise((resolve) => c.once('exit', resolve));
      }
    }
    await server.stop();
    await rm(persist, { recursive: true, force: true });
  });

  function startDev(env: Record<string, string>, args: string[] = []) {
    const child = spawn(process.execPath, [path.join(ROOT, 'scripts', 'dev.mjs'), ...args], {
      cwd: ROOT,
      // Its own mock LLM and MCP ports, so a developer's running `npm run dev` does not collide with the test.
      // CHATD_WEB_BUILD=0: web/dist is built once by `npm test` and the browser tests, never by two stacks at a time.
      env: { ...process.env, CHATD_VERBOSE: '', CHATD_MOCK_LLM_PORT: String(mockPort), CHATD_MCP_PORT: String(mcpPort), CHATD_OIDC_PORT: String(oidcPort), CHATD_WEB_BUILD: '0', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.push(child);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
      child.once('exit', (code, signal) => {
        resolve({ code, signal });
      });
    });
    return { child, exit, out: () => stdout, err: () => stderr };
  }

  /** Processes whose command line mentions this wrangler port (wrangler, its CLI process, workerd). */
  async function processesUsing(port: number): Promise<string[]> {
    const found: string[] = [];
    for (const pid of (await readdir('/proc')).filter((d) => /^\d+$/.test(d))) {
      const cmd = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
      const args = cmd.split('\0');
      if (args.some((a, i) => (a === '--port' && args[i + 1] === String(port)) || new RegExp(`127\\.0\\.0\\.1:${port}(?!\\d)`).test(a))) {
        found.push(`${pid} ${args.join(' ')}`);
      }
    }
    return found;
  }

  it('exits at once, naming CHATD_PORT, when that port is busy, and leaves nothing running', async () => {
    const busy = net.createServer();
    await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
    const port = (busy.address() as net.AddressInfo).port;
    const proxyPort = await freePort();
    try {
      const t0 = Date.now();
      const dev = startDev({
        DATABASE_URL: server.urlFor('postgres'),
        CHATD_PORT: String(port),
        CHATD_PG_PROXY_PORT: String(proxyPort),
      });
      const { code } = await dev.exit;
      expect(Date.now() - t0).toBeLessThan(10_000);
      expect(code).toBe(1);
      expect(dev.err()).toContain(`port ${port} is already in use`);
      expect(dev.err()).toContain('set CHATD_PORT to another port');
      expect(dev.out()).not.toContain('ready on');
      await expect(assertPortFree(proxyPort, 'proxy', 'CHATD_PG_PROXY_PORT')).resolves.toBeUndefined();
      expect(await processesUsing(port)).toEqual([]);
    } finally {
      await new Promise((resolve) => busy.close(resolve));
    }
  });

  it('refuses a port variable that is not a port number', async () => {
    const dev = startDev({ DATABASE_URL: server.urlFor('postgres'), CHATD_PORT: 'eighty' });
    expect((await dev.exit).code).toBe(1);
    expect(dev.err()).toContain('CHATD_PORT must be a TCP port number between 1 and 65535, got "eighty"');
  });

  it('starts proxy, migrations and wrangler; SIGINT stops all of them and exits 0', async () => {
    const admin = new pg.Client(server.url);
    await admin.connect();
    await admin.query('CREATE DATABASE dev_smoke');
    await admin.end();
    const url = new URL(server.urlFor('dev_smoke'));
    url.password = 'hunter2-secret'; // trust auth ignores it; it must never be printed
    const [port, proxyPort] = [await freePort(), await freePort()];
    const dev = startDev(
      { DATABASE_URL: url.toString(), CHATD_PORT: String(port), CHATD_PG_PROXY_PORT: String(proxyPort), PROVIDER_KEY_ENCRYPTION_KEY: randomBytes(32).toString('base64') },
      // wrangler's inspector on a free port: another stack on this machine (a parallel suite) may hold 9229.
      ['--persist-to', persist, '--inspector-port', String(await freePort())],
    );
    await until(() => dev.out().includes('chatd-edge ready on') || dev.child.exitCode !== null, 90_000);
    expect(dev.out()).toMatch(new RegExp(`chatd-edge ready on http://127\\.0\\.0\\.1:${port} \\(Postgres: postgres://postgres:\\*\\*\\*@127\\.0\\.0\\.1:\\d+/dev_smoke from DATABASE_URL, proxy: 127\\.0\\.0\\.1:${proxyPort}\\)`));
    expect(dev.out()).toMatch(/\[migrate\] applied 000001_/);
    expect(dev.out()).toContain(`[proxy] listening on ws://127.0.0.1:${proxyPort}, pooling Postgres sessions (CHATD_PG_POOL=0 turns it off)`);
    expect(dev.out()).toContain('[wrangler]');
    expect(dev.out()).toContain(`[mcp] listening, MCP endpoint http://127.0.0.1:${mcpPort}/mcp`);
    expect(dev.out()).toContain(`[seed] seeded MCP server local at http://127.0.0.1:${mcpPort}/mcp (disabled`);
    expect(dev.out() + dev.err()).not.toContain('hunter2-secret');
    // wrangler starts beside Postgres and the rest, but "ready" waits for the migrations and the seed.
    expect(dev.out().indexOf('[seed] seeded MCP server local')).toBeLessThan(dev.out().indexOf('chatd-edge ready on'));
    expect((await processesUsing(port)).length).toBeGreaterThan(0);

    dev.child.kill('SIGINT');
    const { code } = await dev.exit;
    expect(code).toBe(0);
    expect(dev.out()).toContain('[wrangler] stopped');
    expect(dev.out()).toContain('[mcp] stopped');
    // The Worker stops first, before what it uses.
    expect(dev.out().indexOf('[wrangler] stopped')).toBeLessThan(dev.out().indexOf('[proxy] stopped'));
    await expect(assertPortFree(mcpPort, 'the local MCP server', 'CHATD_MCP_PORT')).resolves.toBeUndefined();
    expect(dev.out()).toMatch(/\[proxy\] stopped \(\d+ clients, \d+ Postgres sessions opened, \d+ reused\)/);
    expect(await processesUsing(port)).toEqual([]);
    await expect(assertPortFree(port, 'wrangler', 'CHATD_PORT')).resolves.toBeUndefined();
    await expect(assertPortFree(proxyPort, 'proxy', 'CHATD_PG_PROXY_PORT')).resolves.toBeUndefined();
  }, 120_000);
});

async function until(cond: () => boolean, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}
