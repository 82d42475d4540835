// @ts-check
/**
 * The WebSocket-to-TCP proxy the Neon serverless driver needs to reach a plain Postgres.
 * The driver opens ws://<proxy>/v2?address=<host>:<port>&token=<token> and speaks the Postgres wire protocol
 * in binary frames. Loopback only: it listens on 127.0.0.1 and forwards to loopback targets only, and only to the
 * configured ports (the Postgres it serves).
 *
 * Local Postgres trusts every local connection, and a browser lets any web page open a WebSocket to 127.0.0.1,
 * so the upgrade is refused (403) when it carries an Origin header (browsers always send one; the driver, in
 * workerd or Node, never does), and without this run's random token (401), which `npm run dev` hands to the Worker
 * as the PG_WS_PROXY_TOKEN secret.
 *
 * Two modes:
 *   - plain (`pool` false or absent): every WebSocket gets its own TCP connection, bytes piped both ways.
 *   - session pooling (`pool: true` or `{ maxIdle, idleTimeoutMs }`), PgBouncer's session mode (Neon's pooled endpoint
 *     runs PgBouncer in transaction mode, which is stricter; the Worker keeps no session state): when a client leaves a backend idle and healthy, the proxy sends it `DISCARD ALL` and keeps
 *     it; the next client with the same target and startup parameters gets it without a new Postgres session
 *     (a fresh one costs ~15-25 ms of Postgres CPU on a VM where fork is slow). The proxy answers that client's
 *     startup itself with what the backend said at its own startup (AuthenticationOk, ParameterStatus,
 *     BackendKeyData, ReadyForQuery). Only backends that asked for no authentication are pooled (reusing one that
 *     did would let a later client skip it), and only when every request got its answer outside a transaction.
 *
 * Protocol references: https://www.postgresql.org/docs/current/protocol-message-formats.html
 *
 * This file is the server and plain mode. Its parts: pg-ws-proxy-auth.mjs (who may connect), pg-ws-proxy-pool.mjs
 * (the pool and a pooled client), pg-ws-proxy-backend.mjs (a pooled Postgres connection), pg-session-state.mjs
 * (whether a client changed its session) and pg-wire.mjs (the protocol's bytes).
 */
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { WebSocketServer } from 'ws';
import { checkUpgrade } from './pg-ws-proxy-auth.mjs';
import { ClientSession, SessionPool } from './pg-ws-proxy-pool.mjs';
import { assertPortFree } from './ports.mjs';

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '::1', '[::1]']);

/**
 * @param {string | null} address
 * @returns {{ host: string, port: number } | null}
 */
export function parseTarget(address) {
  if (!address) return null;
  const m = /^(\[[^\]]+\]|[^:]+):(\d{1,5})$/.exec(address);
  if (!m || m[1] === undefined || m[2] === undefined) return null;
  const port = Number(m[2]);
  if (port < 1 || port > 65535) return null;
  const host = m[1].replace(/^\[|\]$/g, '');
  return LOOPBACK.has(host) || LOOPBACK.has(m[1]) ? { host, port } : null;
}

/**
 * @typedef {object} PoolOptions
 * @property {number} [maxIdle]        idle backends kept per pool key (target + startup parameters); default 64
 * @property {number} [idleTimeoutMs]  an idle pooled backend is closed after this long; default 30000
 */

/**
 * @typedef {object} ProxyStats
 * @property {number} clients         WebSocket connections accepted (with a valid target)
 * @property {number} backendsOpened  TCP connections to Postgres opened for clients
 * @property {number} reused          clients served by a pooled backend
 * @property {number} resetsSkipped   sessions handed back to the pool without DISCARD ALL (the client changed nothing)
 * @property {number} pooledIdle      backends idle in the pool now
 */

/** @typedef {import('./pg-ws-proxy-pool.mjs').Target} Target */

/** @param {import('ws').RawData} data */
const toBuffer = (data) => (Array.isArray(data) ? Buffer.concat(data) : Buffer.isBuffer(data) ? data : Buffer.from(data));

/**
 * Plain mode: one TCP connection for a WebSocket, bytes piped both ways. Also used in pool mode for what is not
 * pooled (CancelRequest, other protocol versions, replication), with the bytes already read as `first`.
 * @param {{ counters: { backendsOpened: number }, sockets: Set<net.Socket>, log: (line: string) => void }} proxy
 * @returns {import('./pg-ws-proxy-pool.mjs').Pipe}
 */
const piper = ({ counters, sockets, log }) => (ws, target, first) => {
  counters.backendsOpened += 1;
  const tcp = net.connect({ host: target.host, port: target.port });
  tcp.setNoDelay(true);
  sockets.add(tcp);
  /** @type {Buffer[]} */
  const pending = first ? [first] : [];
  let connected = false;
  tcp.on('connect', () => {
    connected = true;
    for (const b of pending) tcp.write(b);
    pending.length = 0;
  });
  tcp.on('data', (data) => {
    if (ws.readyState === ws.OPEN) ws.send(data, { binary: true });
  });
  tcp.on('error', (e) => {
    log(`pg proxy: ${target.host}:${target.port}: ${e.message}`);
    ws.close(1011, 'upstream connection failed');
  });
  tcp.on('close', () => {
    sockets.delete(tcp);
    if (ws.readyState === ws.OPEN || ws.readyState === ws.CONNECTING) ws.close(1000);
  });
  ws.on('close', () => tcp.destroy());
  ws.on('error', () => tcp.destroy());
  return (buf) => {
    if (connected) tcp.write(buf);
    else pending.push(buf);
  };
};

/**
 * @param {{ port: number, ports: Iterable<number>, token?: string, log?: (line: string) => void, pool?: boolean | PoolOptions }} opts
 *   `ports`: the only target ports it forwards to (a Set given here may grow later); `token`: required of
 *   clients (`&token=` in the URL), random when not given
 * @returns {Promise<{ port: number, token: string, close: () => Promise<void>, stats: () => ProxyStats }>}
 */
export async function startPgWsProxy({ port, ports, token = randomBytes(24).toString('base64url'), log = () => {}, pool = false }) {
  if (port !== 0) await assertPortFree(port, 'the Postgres WebSocket proxy', 'CHATD_PG_PROXY_PORT');
  const allowedPorts = ports instanceof Set ? ports : new Set(ports);
  const poolOpts = pool === true ? {} : pool || null;
  const maxIdle = poolOpts?.maxIdle ?? 64;
  const idleTimeoutMs = poolOpts?.idleTimeoutMs ?? 30_000;
  const wss = new WebSocketServer({
    host: '127.0.0.1',
    port,
    perMessageDeflate: false,
    verifyClient: (info, done) => {
      const verdict = checkUpgrade(info.req, token);
      if (verdict.ok) done(true);
      else done(false, verdict.status, verdict.reason);
    },
  });
  /** @type {Set<net.Socket>} */
  const sockets = new Set();
  /** @type {import('./pg-ws-proxy-pool.mjs').PoolCounters} */
  const counters = { clients: 0, backendsOpened: 0, reused: 0, resetsSkipped: 0 };
  const pipe = piper({ counters, sockets, log });
  const sessions = poolOpts ? new SessionPool({ maxIdle, idleTimeoutMs, counters, log }) : null;

  wss.on('connection', (ws, req) => {
    const url = new URL(req.url ?? '/', 'http://proxy');
    const target = parseTarget(url.searchParams.get('address'));
    if (!target) {
      ws.close(1008, 'address must be a loopback host:port');
      return;
    }
    if (!allowedPorts.has(target.port)) {
      ws.close(1008, 'address must be the Postgres this proxy serves');
      return;
    }
    counters.clients += 1;
    if (!sessions) {
      const send = pipe(ws, target);
      ws.on('message', (data) => {
        send(toBuffer(data));
      });
      return;
    }
    const session = new ClientSession(sessions, ws, target, pipe);
    ws.on('message', (data) => {
      session.onMessage(toBuffer(data));
    });
    ws.on('close', () => {
      session.leave();
    });
    ws.on('error', () => {
      session.leave();
    });
  });
  await new Promise((resolve, reject) => {
    wss.once('listening', () => resolve(undefined));
    wss.once('error', reject);
  });
  const addr = wss.address();
  const actualPort = typeof addr === 'object' && addr ? addr.port : port;
  return {
    port: actualPort,
    token,
    stats: () => ({ ...counters, pooledIdle: sessions?.pooledIdle ?? 0 }),
    close: async () => {
      sessions?.close();
      for (const s of sockets) s.destroy();
      for (const c of wss.clients) c.terminate();
      await new Promise((resolve) => wss.close(() => resolve(undefined)));
    },
  };
}
