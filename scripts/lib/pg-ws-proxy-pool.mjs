// @ts-check
/**
 * The WebSocket proxy's session pooling (PgBouncer's session mode; scripts/lib/pg-ws-proxy.mjs describes it): the
 * idle backends by pool key (target + startup parameters), and the client side of a pooled connection, which reads
 * the client's startup and hands it a pooled backend or a new one.
 */
import { Backend } from './pg-ws-proxy-backend.mjs';
import { GSSENC_REQUEST, MAX_STARTUP, PROTOCOL_3_0, SSL_NO, SSL_REQUEST, startupParams } from './pg-wire.mjs';

/** @typedef {{ host: string, port: number }} Target */

/**
 * Serves a WebSocket with a plain TCP connection of its own (bytes piped both ways, `first` sent first), and returns
 * how to send it more client bytes.
 * @typedef {(ws: import('ws').WebSocket, target: Target, first?: Buffer) => (buf: Buffer) => void} Pipe
 */

/**
 * @typedef {object} PoolCounters
 * @property {number} clients         WebSocket connections accepted (with a valid target)
 * @property {number} backendsOpened  TCP connections to Postgres opened for clients
 * @property {number} reused          clients served by a pooled backend
 * @property {number} resetsSkipped   sessions handed back to the pool without DISCARD ALL (the client changed nothing)
 */

/** The backends of one proxy: every live one, the idle ones by pool key, and how many are resetting. */
export class SessionPool {
  /**
   * @param {{ maxIdle: number, idleTimeoutMs: number, counters: PoolCounters, log: (line: string) => void }} opts
   */
  constructor({ maxIdle, idleTimeoutMs, counters, log }) {
    this.maxIdle = maxIdle;
    this.idleTimeoutMs = idleTimeoutMs;
    this.counters = counters;
    this.log = log;
    /** Set when the proxy closes: nothing goes back to the pool. */
    this.closing = false;
    /** Idle backends by pool key, most recently used last. @type {Map<string, Backend[]>} */
    this.idle = new Map();
    /** Backends resetting (DISCARD ALL in flight) by pool key, counted against maxIdle. @type {Map<string, number>} */
    this.resetting = new Map();
    /** Every live backend, for close(). @type {Set<Backend>} */
    this.backends = new Set();
    this.pooledIdle = 0;
  }

  /** A backend was opened. @param {Backend} b */
  opened(b) {
    this.counters.backendsOpened += 1;
    this.backends.add(b);
  }

  /** Its TCP connection is gone. @param {Backend} b */
  forget(b) {
    this.backends.delete(b);
  }

  /** The most recently used idle backend of this key, still listed (its reuse unlists it). @param {string} key */
  take(key) {
    return this.idle.get(key)?.at(-1);
  }

  /** Whether this key already has maxIdle backends idle or resetting. @param {string} key */
  full(key) {
    return (this.idle.get(key)?.length ?? 0) + (this.resetting.get(key) ?? 0) >= this.maxIdle;
  }

  /** @param {string} key */
  resetStarted(key) {
    this.resetting.set(key, (this.resetting.get(key) ?? 0) + 1);
  }

  /** @param {string} key */
  resetEnded(key) {
    const n = (this.resetting.get(key) ?? 1) - 1;
    if (n > 0) this.resetting.set(key, n);
    else this.resetting.delete(key);
  }

  /** Into the idle list of its key. @param {Backend} b */
  park(b) {
    const list = this.idle.get(b.key);
    if (list) list.push(b);
    else this.idle.set(b.key, [b]);
    this.pooledIdle += 1;
  }

  /** Out of the idle list of its key. @param {Backend} b */
  unpark(b) {
    const list = this.idle.get(b.key);
    const at = list ? list.indexOf(b) : -1;
    if (list && at >= 0) {
      list.splice(at, 1);
      this.pooledIdle -= 1;
      if (list.length === 0) this.idle.delete(b.key);
    }
  }

  /** The proxy closes: every backend is dropped, and none goes back to the pool. */
  close() {
    this.closing = true;
    for (const b of this.backends) b.destroy();
  }
}

/** One WebSocket client in pool mode: reads its startup, then uses a backend (pooled or new) until it leaves. */
export class ClientSession {
  /**
   * @param {SessionPool} pool
   * @param {import('ws').WebSocket} ws
   * @param {Target} target
   * @param {Pipe} pipe  how a connection that is not pooled is served
   */
  constructor(pool, ws, target, pipe) {
    this.pool = pool;
    this.pipe = pipe;
    this.ws = ws;
    this.target = target;
    /** @type {Backend | null} */
    this.backend = null;
    /** @type {Buffer | null} bytes of the startup phase not yet handled */
    this.startBuf = null;
    /** @type {((buf: Buffer) => void) | null} set when this client is piped, not pooled */
    this.piped = null;
    this.left = false;
  }

  /** @param {Buffer} buf */
  onMessage(buf) {
    if (this.left) return;
    if (this.backend) {
      this.backend.fromClient(buf);
      return;
    }
    if (this.piped) {
      this.piped(buf);
      return;
    }
    let b = this.startBuf ? Buffer.concat([this.startBuf, buf]) : buf;
    while (b.length >= 8) {
      const len = b.readInt32BE(0);
      if (len < 8 || len > MAX_STARTUP) {
        this.startBuf = null;
        this.left = true;
        this.ws.close(1002, 'not a Postgres startup message');
        return;
      }
      if (b.length < len) break;
      const code = b.readInt32BE(4);
      if (len === 8 && (code === SSL_REQUEST || code === GSSENC_REQUEST)) {
        // No encryption on loopback; the client goes on with a StartupMessage.
        this.ws.send(SSL_NO, { binary: true });
        b = b.subarray(8);
        continue;
      }
      this.startBuf = null;
      const params = code === PROTOCOL_3_0 ? startupParams(b.subarray(0, len)) : null;
      if (!params || params.some(([k]) => k === 'replication')) {
        // CancelRequest (for the backend it names, so never pooled), another protocol version, a replication
        // session, or something for Postgres itself to refuse: a plain pipe on a fresh connection.
        this.piped = this.pipe(this.ws, this.target, b);
        return;
      }
      this.start(b.subarray(0, len), params, b.subarray(len));
      return;
    }
    this.startBuf = b.length ? b : null;
  }

  /**
   * @param {Buffer} startup
   * @param {[string, string][]} params
   * @param {Buffer} rest bytes the client sent after its startup message
   */
  start(startup, params, rest) {
    const sorted = params.slice().sort((x, y) => (x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : x[1] < y[1] ? -1 : x[1] > y[1] ? 1 : 0));
    const key = JSON.stringify([this.target.host, this.target.port, sorted]);
    const pooled = this.pool.take(key);
    /** @type {Backend} */
    let backend;
    if (pooled) {
      this.pool.counters.reused += 1;
      pooled.reuse(this);
      backend = pooled;
    } else {
      backend = new Backend(this.pool, this.target, key, startup);
      backend.client = this;
    }
    this.backend = backend;
    if (rest.length) backend.fromClient(rest);
  }

  /** Terminate, WebSocket close or error: the backend goes back to the pool or is closed. */
  leave() {
    if (this.left) return;
    this.left = true;
    const backend = this.backend;
    if (backend && backend.client === this) backend.release();
    // After a Terminate Postgres would have closed the connection; so does the proxy.
    if (this.ws.readyState === this.ws.OPEN) this.ws.close(1000);
  }
}
