// @ts-check
/**
 * The WebSocket-to-TCP proxy the Neon serverless driver needs to reach a plain Postgres.
 * The driver opens ws://<proxy>/v2?address=<host>:<port> and speaks the Postgres wire protocol
 * in binary frames. Loopback only: it listens on 127.0.0.1 and forwards to loopback targets only.
 */
import net from 'node:net';
import { WebSocketServer } from 'ws';
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
 * @param {{ port: number, log?: (line: string) => void }} opts
 * @returns {Promise<{ port: number, close: () => Promise<void> }>}
 */
export async function startPgWsProxy({ port, log = () => {} }) {
  if (port !== 0) await assertPortFree(port, 'the Postgres WebSocket proxy', 'CHATD_PG_PROXY_PORT');
  const wss = new WebSocketServer({ host: '127.0.0.1', port, perMessageDeflate: false });
  /** @type {Set<net.Socket>} */
  const sockets = new Set();
  wss.on('connection', (ws, req) => {
    const url = new URL(req.url ?? '/', 'http://proxy');
    const target = parseTarget(url.searchParams.get('address'));
    if (!target) {
      ws.close(1008, 'address must be a loopback host:port');
      return;
    }
    const tcp = net.connect({ host: target.host, port: target.port });
    tcp.setNoDelay(true);
    sockets.add(tcp);
    /** @type {Buffer[]} */
    const pending = [];
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
    ws.on('message', (data) => {
      const buf = Array.isArray(data) ? Buffer.concat(data) : Buffer.isBuffer(data) ? data : Buffer.from(data);
      if (connected) tcp.write(buf);
      else pending.push(buf);
    });
    ws.on('close', () => tcp.destroy());
    ws.on('error', () => tcp.destroy());
  });
  await new Promise((resolve, reject) => {
    wss.once('listening', () => resolve(undefined));
    wss.once('error', reject);
  });
  const addr = wss.address();
  const actualPort = typeof addr === 'object' && addr ? addr.port : port;
  return {
    port: actualPort,
    close: async () => {
      for (const s of sockets) s.destroy();
      for (const c of wss.clients) c.terminate();
      await new Promise((resolve) => wss.close(() => resolve(undefined)));
    },
  };
}
