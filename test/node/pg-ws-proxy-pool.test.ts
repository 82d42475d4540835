/**
 * Session pooling in the Postgres WebSocket proxy (scripts/lib/pg-ws-proxy.mjs), against a real Postgres: with the
 * Neon driver exactly as functions/core/db.ts configures it, and with a small raw wire-protocol client for what the
 * driver cannot do on purpose (split frames, a socket dropped mid-transaction or mid-query, SSLRequest).
 */
import { Client, neonConfig } from '@neondatabase/serverless';
import { randomUUID } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { changesSession } from '../../scripts/lib/pg-session-state.mjs';
import { startPgWsProxy } from '../../scripts/lib/pg-ws-proxy.mjs';
import { startScratchPostgres } from '../../scripts/lib/scratch-db.mjs';

type Proxy = Awaited<ReturnType<typeof startPgWsProxy>>;

let server: Awaited<ReturnType<typeof startScratchPostgres>>;
let admin: pg.Client;
let proxy: Proxy | null = null;
let proxyPort = 0;
let proxyToken = '';
const table = `pool_rows_${randomUUID().replace(/-/g, '')}`;
const pwUser = `pool_pw_${randomUUID().replace(/-/g, '').slice(0, 12)}`;
const pwPassword = randomUUID();

beforeAll(async () => {
  server = await startScratchPostgres('pgpool-test');
  admin = new pg.Client(server.url);
  await admin.connect();
  await admin.query(`CREATE TABLE ${table} (tag text NOT NULL)`);
  // A role that must authenticate (scram), for the "never pool an authenticated backend" test.
  await admin.query(`CREATE ROLE ${pwUser} LOGIN PASSWORD '${pwPassword}'`);
  const hba = (await admin.query<{ hba_file: string }>('SHOW hba_file')).rows[0]?.hba_file ?? '';
  await writeFile(hba, `host all ${pwUser} 127.0.0.1/32 scram-sha-256\n${await readFile(hba, 'utf8')}`);
  await admin.query('SELECT pg_reload_conf()');

  neonConfig.webSocketConstructor = WebSocket;
  neonConfig.wsProxy = (host, port) => `127.0.0.1:${proxyPort}/v2?address=${host}:${port}&token=${proxyToken}`;
  neonConfig.useSecureWebSocket = false;
  neonConfig.pipelineTLS = false;
  neonConfig.pipelineConnect = false;
});

afterEach(async () => {
  await proxy?.close();
  proxy = null;
});

afterAll(async () => {
  await admin.end();
  await server.stop();
});

async function startProxy(pool: Parameters<typeof startPgWsProxy>[0]['pool']): Promise<Proxy> {
  proxy = await startPgWsProxy({ port: 0, ports: [server.port], pool });
  proxyPort = proxy.port;
  proxyToken = proxy.token;
  return proxy;
}

/** A Neon driver client through the proxy. */
async function neon(url = server.url): Promise<Client> {
  const c = new Client({ connectionString: url });
  await c.connect();
  return c;
}

async function pidOf(c: Client): Promise<number> {
  const r = await c.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
  return Number(r.rows[0]?.pid);
}

async function backendAlive(pid: number): Promise<boolean> {
  const r = await admin.query('SELECT 1 FROM pg_stat_activity WHERE pid = $1', [pid]);
  return r.rowCount === 1;
}

async function until(cond: () => boolean | Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}

// ---------------------------------------------------------------------------------------------------------------
// A minimal frontend of the wire protocol over the proxy's WebSocket.

function frame(type: string, body: Buffer): Buffer {
  const b = Buffer.alloc(5 + body.length);
  b.write(type, 0, 'latin1');
  b.writeInt32BE(4 + body.length, 1);
  body.copy(b, 5);
  return b;
}
const queryMsg = (sql: string) => frame('Q', Buffer.from(`${sql}\0`));
const TERMINATE = frame('X', Buffer.alloc(0));
const SSL_REQUEST = Buffer.from([0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f]);

function startupMsg(params: Record<string, string>): Buffer {
  const body = Buffer.from(`${Object.entries(params).map(([k, v]) => `${k}\0${v}\0`).join('')}\0`);
  const b = Buffer.alloc(8 + body.length);
  b.writeInt32BE(b.length, 0);
  b.writeInt32BE(196608, 4);
  body.copy(b, 8);
  return b;
}
/** The raw clients' startup parameters: all raw clients share one pool key. */
const RAW_PARAMS = { user: 'postgres', database: 'postgres', application_name: 'raw-test' };

interface Reply {
  status: string;
  rows: (string | null)[][];
  error?: string;
  types: string[];
  pid?: number;
  /** BackendKeyData's body: process id and secret key, what a CancelRequest names. */
  key?: Buffer;
}

class Raw {
  private buf: Buffer = Buffer.alloc(0);
  private wake: (() => void) | null = null;
  private isClosed = false;
  readonly closed: Promise<number>;

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (d: Buffer) => {
      this.buf = this.buf.length ? Buffer.concat([this.buf, d]) : d;
      this.wake?.();
    });
    this.closed = new Promise((resolve) => {
      ws.once('close', (code) => {
        this.isClosed = true;
        this.wake?.();
        resolve(code);
      });
    });
  }

  static async open(): Promise<Raw> {
    const ws = new WebSocket(`ws://127.0.0.1:${proxyPort}/v2?address=127.0.0.1:${server.port}&token=${proxyToken}`);
    await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
    return new Raw(ws);
  }

  /** Opens, sends the startup message (in `pieces` frames) and reads the reply up to ReadyForQuery. */
  static async connect(pieces = 1): Promise<{ raw: Raw; reply: Reply }> {
    const raw = await Raw.open();
    raw.sendSplit(startupMsg(RAW_PARAMS), pieces);
    return { raw, reply: await raw.ready() };
  }

  send(b: Buffer): void {
    this.ws.send(b, { binary: true });
  }

  /** Sends b as `pieces` WebSocket frames of about equal size. */
  sendSplit(b: Buffer, pieces: number): void {
    const size = Math.ceil(b.length / pieces);
    for (let i = 0; i < b.length; i += size) this.send(b.subarray(i, i + size));
  }

  async take(n: number, timeoutMs = 5000): Promise<Buffer> {
    const end = Date.now() + timeoutMs;
    while (this.buf.length < n) {
      if (this.isClosed) throw new Error('connection closed');
      if (Date.now() > end) throw new Error('no reply in time');
      await new Promise<void>((resolve) => {
        this.wake = resolve;
        setTimeout(resolve, 50);
      });
    }
    const out = this.buf.subarray(0, n);
    this.buf = this.buf.subarray(n);
    return out;
  }

  /** Backend messages up to and including ReadyForQuery. */
  async ready(timeoutMs = 5000): Promise<Reply> {
    const reply: Reply = { status: '', rows: [], types: [] };
    for (;;) {
      const head = await this.take(5, timeoutMs);
      const type = String.fromCharCode(head[0] ?? 0);
      const body = await this.take(head.readInt32BE(1) - 4, timeoutMs);
      reply.types.push(type);
      if (type === 'D') {
        const row: (string | null)[] = [];
        let at = 2;
        for (let c = 0; c < body.readInt16BE(0); c++) {
          const len = body.readInt32BE(at);
          at += 4;
          row.push(len < 0 ? null : body.toString('utf8', at, at + len));
          if (len > 0) at += len;
        }
        reply.rows.push(row);
      } else if (type === 'E') {
        reply.error = /M([^\0]*)\0/.exec(body.toString('utf8'))?.[1] ?? 'error';
      } else if (type === 'K') {
        reply.pid = body.readInt32BE(0);
        reply.key = Buffer.from(body);
      } else if (type === 'Z') {
        reply.status = String.fromCharCode(body[0] ?? 0);
        return reply;
      }
    }
  }

  async query(sql: string, timeoutMs = 5000): Promise<Reply> {
    this.send(queryMsg(sql));
    return await this.ready(timeoutMs);
  }

  async pid(): Promise<number> {
    return Number((await this.query('SELECT pg_backend_pid()')).rows[0]?.[0]);
  }

  /** Leaves politely: Terminate, then close. */
  async end(): Promise<void> {
    this.send(TERMINATE);
    this.ws.close();
    await this.closed;
  }
}

// ---------------------------------------------------------------------------------------------------------------

describe('changesSession', () => {
  it.each([
    ['SET x = 1', true],
    ['  -- c\n/* d */ reset all', true],
    ['CREATE TEMPORARY TABLE t (x int)', true],
    ['create local temp table t (x int)', true],
    ["SELECT set_config('a', 'b', false)", true],
    ['select pg_try_advisory_lock(1)', true],
    ['DECLARE c CURSOR WITH HOLD FOR SELECT 1', true],
    ['SELECT pg_try_advisory_xact_lock(1)', false],
    ['UPDATE chats SET status = $1 WHERE id = $2', false],
    ['-- The hottest write\nWITH updated_chat AS (UPDATE chats SET x = 1) INSERT INTO t SELECT 1', false],
    ['BEGIN', false],
  ])('%j changes the session: %s', (sql, want) => {
    expect(changesSession(sql)).toBe(want);
  });
});

describe('the proxy with session pooling', () => {
  it('gives two sequential clients the same backend, reset: no settings, prepared statements or temp tables leak', async () => {
    const p = await startProxy(true);
    const a = await neon();
    const pidA = await pidOf(a);
    const initialName = (await a.query<{ n: string }>("SELECT current_setting('application_name') AS n")).rows[0]?.n;
    await a.query("SET application_name = 'a'");
    await a.query("SET statement_timeout = '1234ms'");
    await a.query('PREPARE leaked AS SELECT 1');
    await a.query('CREATE TEMP TABLE leaked_temp (x int)');
    // Many messages per TCP chunk and messages split across chunks, both ways: 20000 rows, a 500 kB value, a
    // 300 kB parameter.
    const many = await a.query<{ s: string }>("SELECT repeat('x', 50) || g AS s FROM generate_series(1, 20000) g");
    expect(many.rows.length).toBe(20000);
    expect(many.rows[19999]?.s).toBe(`${'x'.repeat(50)}20000`);
    const wide = await a.query<{ s: string }>('SELECT repeat($1::text, 1000) AS s', ['y'.repeat(500)]);
    expect(wide.rows[0]?.s.length).toBe(500_000);
    const param = await a.query<{ n: number }>('SELECT length($1::text) AS n', ['z'.repeat(300_000)]);
    expect(param.rows[0]?.n).toBe(300_000);
    await a.end();
    await until(() => p.stats().pooledIdle === 1);

    const b = await neon();
    expect(await pidOf(b)).toBe(pidA);
    const r = await b.query<{ n: string; t: string; prepared: number; temp: string | null }>(
      `SELECT current_setting('application_name') AS n, current_setting('statement_timeout') AS t,
              (SELECT count(*)::int FROM pg_prepared_statements) AS prepared, to_regclass('pg_temp.leaked_temp')::text AS temp`,
    );
    expect(r.rows[0]).toEqual({ n: initialName, t: '0', prepared: 0, temp: null });
    await b.end();
    expect(p.stats()).toMatchObject({ clients: 2, backendsOpened: 1, reused: 1 });
  });

  it('hands on a session its client left unchanged without DISCARD ALL, and resets one it changed in any way', async () => {
    const p = await startProxy(true);
    const clean = await neon();
    const pid = await pidOf(clean);
    await clean.query('SELECT $1::int + 1 AS n', [41]);
    await clean.query(`INSERT INTO ${table} (tag) VALUES ($1)`, [randomUUID()]);
    await clean.end();
    await until(() => p.stats().pooledIdle === 1);
    expect(p.stats().resetsSkipped).toBe(1);
    const changes = [
      "SELECT set_config('application_name', 'leak', false)",
      'SELECT pg_advisory_lock(424242)',
      '/* a comment */ -- and another\n  set application_name = leak',
      'LISTEN leak',
    ];
    for (const sql of changes) {
      const c = await neon();
      expect(await pidOf(c)).toBe(pid);
      await c.query(sql);
      await c.end();
      await until(() => p.stats().pooledIdle === 1);
      const next = await neon();
      const r = await next.query<{ n: string; locks: number; listening: number }>(
        `SELECT current_setting('application_name') AS n,
                (SELECT count(*)::int FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()) AS locks,
                (SELECT count(*)::int FROM pg_listening_channels()) AS listening`,
      );
      expect(r.rows[0], sql).toMatchObject({ locks: 0, listening: 0 });
      expect(r.rows[0]?.n, sql).not.toMatch(/leak/);
      await next.end();
      await until(() => p.stats().pooledIdle === 1);
    }
    // Every session a change touched was reset; the clean ones (the checks) were handed on as they were.
    expect(p.stats().resetsSkipped).toBe(1 + changes.length);
  });

  it('answers a reused client with the backend key data of the backend it really gets', async () => {
    await startProxy(true);
    const first = await Raw.connect();
    const pid = await first.raw.pid();
    expect(first.reply.pid).toBe(pid);
    await first.raw.end();
    await until(() => proxy?.stats().pooledIdle === 1);
    const second = await Raw.connect();
    expect(second.reply.types).toEqual(expect.arrayContaining(['R', 'S', 'K', 'Z']));
    expect(second.reply.status).toBe('I');
    expect(second.reply.pid).toBe(pid);
    expect(await second.raw.pid()).toBe(pid);
    await second.raw.end();
  });

  it('forwards a CancelRequest to Postgres, and it cancels the query of a reused backend', async () => {
    const p = await startProxy(true);
    const first = await Raw.connect();
    await first.raw.end();
    await until(() => p.stats().pooledIdle === 1);
    const { raw, reply } = await Raw.connect();
    expect(p.stats().reused).toBe(1);
    raw.send(queryMsg('SELECT pg_sleep(10)'));
    const pid = reply.pid ?? 0;
    await until(async () => (await admin.query("SELECT 1 FROM pg_stat_activity WHERE pid = $1 AND state = 'active'", [pid])).rowCount === 1);
    const t0 = Date.now();
    const cancel = await Raw.open();
    const head = Buffer.alloc(8);
    head.writeInt32BE(16, 0);
    head.writeInt32BE(80877102, 4);
    cancel.send(Buffer.concat([head, reply.key ?? Buffer.alloc(8)]));
    expect(await cancel.closed).toBe(1000);
    const r = await raw.ready();
    expect(r.error).toBe('canceling statement due to user request');
    expect(Date.now() - t0).toBeLessThan(5000);
    expect((await raw.query('SELECT 3')).rows).toEqual([['3']]);
    await raw.end();
  });

  it('parses messages split across frames and many messages per frame, both ways', async () => {
    const p = await startProxy(true);
    // SSLRequest first: the proxy declines it itself, then the startup message arrives in 7 frames.
    const raw = await Raw.open();
    raw.send(SSL_REQUEST);
    expect((await raw.take(1)).toString()).toBe('N');
    raw.sendSplit(startupMsg(RAW_PARAMS), 7);
    const hello = await raw.ready();
    expect(hello.status).toBe('I');
    const pid = await raw.pid();
    // One query a byte per frame, then two queries in one frame.
    raw.sendSplit(queryMsg('SELECT 41 + 1'), 1000);
    expect((await raw.ready()).rows).toEqual([['42']]);
    raw.send(Buffer.concat([queryMsg('SELECT 1'), queryMsg('SELECT 2')]));
    expect((await raw.ready()).rows).toEqual([['1']]);
    expect((await raw.ready()).rows).toEqual([['2']]);
    // A Terminate split over two frames: still recognised, so the backend is pooled.
    raw.send(TERMINATE.subarray(0, 1));
    raw.send(TERMINATE.subarray(1));
    await raw.closed;
    await until(() => p.stats().pooledIdle === 1);
    // The next client's startup and first query in a single frame.
    const next = await Raw.open();
    next.send(Buffer.concat([startupMsg(RAW_PARAMS), queryMsg('SELECT pg_backend_pid()')]));
    expect((await next.ready()).status).toBe('I');
    expect((await next.ready()).rows).toEqual([[String(pid)]]);
    await next.end();
    expect(p.stats()).toMatchObject({ backendsOpened: 1, reused: 1 });
  });

  it.each([
    ['drops its socket', async (raw: Raw) => {
      raw.ws.terminate();
      await raw.closed;
    }],
    ['sends Terminate', (raw: Raw) => raw.end()],
  ])('does not hand on a backend whose client %s inside a transaction; the insert is rolled back', async (_, leave) => {
    const p = await startProxy(true);
    const tag = randomUUID();
    const { raw } = await Raw.connect();
    const pid = await raw.pid();
    expect((await raw.query('BEGIN')).status).toBe('T');
    expect((await raw.query(`INSERT INTO ${table} (tag) VALUES ('${tag}')`)).status).toBe('T');
    await leave(raw);

    const next = await Raw.connect();
    expect(next.reply.status).toBe('I');
    expect(await next.raw.pid()).not.toBe(pid);
    expect((await next.raw.query('SELECT 1')).status).toBe('I');
    await next.raw.end();
    await until(async () => !(await backendAlive(pid)));
    expect((await admin.query(`SELECT 1 FROM ${table} WHERE tag = $1`, [tag])).rowCount).toBe(0);
    expect(p.stats().reused).toBe(0);
  });

  it('does not hand on a backend still running a query when its client left', async () => {
    const p = await startProxy(true);
    const { raw } = await Raw.connect();
    const pid = await raw.pid();
    raw.send(queryMsg('SELECT pg_sleep(2)'));
    await until(async () => (await admin.query("SELECT 1 FROM pg_stat_activity WHERE pid = $1 AND query LIKE 'SELECT pg_sleep%' AND state = 'active'", [pid])).rowCount === 1);
    raw.ws.terminate();
    await raw.closed;

    const t0 = Date.now();
    const next = await Raw.connect();
    const r = await next.raw.query('SELECT 7');
    expect(Date.now() - t0).toBeLessThan(1000);
    expect(r.rows).toEqual([['7']]);
    expect(await next.raw.pid()).not.toBe(pid);
    await next.raw.end();
    expect(p.stats()).toMatchObject({ backendsOpened: 2, reused: 0 });
  });

  it('serves 20 concurrent clients, then 20 more on the same backends, with correct answers', async () => {
    const p = await startProxy(true);
    const wave = async (base: number) =>
      await Promise.all(
        Array.from({ length: 20 }, async (_, i) => {
          const c = await neon();
          const n = base + i;
          const r1 = await c.query<{ v: number }>('SELECT $1::int * 2 AS v', [n]);
          const r2 = await c.query<{ s: string }>("SELECT 'client-' || $1::text AS s", [n]);
          const pid = await pidOf(c);
          await c.end();
          expect(r1.rows).toEqual([{ v: n * 2 }]);
          expect(r2.rows).toEqual([{ s: `client-${n}` }]);
          return pid;
        }),
      );
    const first = await wave(0);
    const opened = p.stats().backendsOpened;
    // At most one backend per client; fewer when a client that finished early handed its backend on.
    expect(opened).toBeLessThanOrEqual(20);
    expect(opened).toBe(new Set(first).size);
    await until(() => p.stats().pooledIdle === opened);
    const second = await wave(100);
    // The second wave runs on the first wave's backends (a client of the second wave may find them all busy only
    // when the first wave needed fewer than 20 at once).
    expect(second.filter((pid) => !first.includes(pid)).length).toBeLessThanOrEqual(20 - opened);
    const { backendsOpened, reused, clients } = p.stats();
    expect(clients).toBe(40);
    expect(backendsOpened).toBeLessThanOrEqual(20);
    expect(reused).toBe(40 - backendsOpened);
    expect(reused).toBeGreaterThanOrEqual(20);
  });

  it('keeps at most maxIdle idle backends per key', async () => {
    const p = await startProxy({ maxIdle: 2 });
    const clients = await Promise.all(Array.from({ length: 5 }, () => neon()));
    const pids = await Promise.all(clients.map(pidOf));
    await Promise.all(clients.map((c) => c.end()));
    await until(async () => (await Promise.all(pids.map(backendAlive))).filter(Boolean).length === 2);
    expect(p.stats().pooledIdle).toBe(2);
  });

  it('closes idle backends after idleTimeoutMs', async () => {
    const p = await startProxy({ idleTimeoutMs: 400 });
    const c = await neon();
    const pid = await pidOf(c);
    await c.end();
    await until(() => p.stats().pooledIdle === 1);
    expect(await backendAlive(pid)).toBe(true);
    await until(async () => !(await backendAlive(pid)), 3000);
    expect(p.stats().pooledIdle).toBe(0);
  });

  it('drops a pooled backend that Postgres closes, and the next client gets a working session', async () => {
    const p = await startProxy(true);
    const c = await neon();
    const pid = await pidOf(c);
    await c.end();
    await until(() => p.stats().pooledIdle === 1);
    await admin.query('SELECT pg_terminate_backend($1)', [pid]);
    await until(() => p.stats().pooledIdle === 0);
    const d = await neon();
    expect(await pidOf(d)).not.toBe(pid);
    await d.end();
    expect(p.stats().reused).toBe(0);
  });

  it('closes the client when Postgres closes its backend', async () => {
    await startProxy(true);
    const { raw } = await Raw.connect();
    const pid = await raw.pid();
    await admin.query('SELECT pg_terminate_backend($1)', [pid]);
    expect(await raw.closed).toBe(1000);
  });

  it('never pools a backend that asked its client for a password', async () => {
    const p = await startProxy(true);
    const url = new URL(server.url);
    url.username = pwUser;
    url.password = pwPassword;
    const a = await neon(url.toString());
    const pid = await pidOf(a);
    await a.end();
    await until(async () => !(await backendAlive(pid)));
    // Same pool key, wrong password: must be refused, not served by the first client's authenticated backend.
    url.password = 'wrong';
    await expect(neon(url.toString())).rejects.toThrow(/password authentication failed/);
    expect(p.stats()).toMatchObject({ reused: 0, pooledIdle: 0 });
  });
});

describe('the proxy without pooling', () => {
  it('opens one Postgres session per client', async () => {
    const p = await startProxy(false);
    const a = await neon();
    const pidA = await pidOf(a);
    await a.end();
    const b = await neon();
    expect(await pidOf(b)).not.toBe(pidA);
    await b.end();
    expect(p.stats()).toMatchObject({ clients: 2, backendsOpened: 2, reused: 0, pooledIdle: 0 });
  });
});
