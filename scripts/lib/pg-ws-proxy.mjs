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
 */
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { WebSocketServer } from 'ws';
import { checkUpgrade } from './pg-ws-proxy-auth.mjs';
import { assertPortFree } from './ports.mjs';
import { SessionWatch } from './pg-session-state.mjs';

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

/** @typedef {{ host: string, port: number }} Target */

// Startup-phase codes (the int32 after the length of an untyped first message).
const PROTOCOL_3_0 = 196608;
const SSL_REQUEST = 80877103;
const GSSENC_REQUEST = 80877104;
/** Postgres refuses longer startup packets (MAX_STARTUP_PACKET_LENGTH). */
const MAX_STARTUP = 10000;

// Message type bytes.
const T_QUERY = 0x51; // 'Q'
const T_SYNC = 0x53; // 'S' (frontend Sync; backend ParameterStatus has the same letter)
const T_FUNCTION_CALL = 0x46; // 'F', answered by one ReadyForQuery like Q
const T_TERMINATE = 0x58; // 'X'
const T_READY = 0x5a; // 'Z'
const T_AUTH = 0x52; // 'R'
const T_PARAMETER_STATUS = 0x53; // 'S'
const T_BACKEND_KEY = 0x4b; // 'K'
const T_ERROR = 0x45; // 'E'
const T_NOTICE = 0x4e; // 'N'
const STATUS_IDLE = 0x49; // 'I'
/** Frontend messages of the extended protocol: after one of them, the backend waits for a Sync. */
const EXTENDED = new Set([0x50 /* P */, 0x42 /* B */, 0x45 /* E */, 0x44 /* D */, 0x43 /* C */, 0x48 /* H */]);

const AUTH_OK = Buffer.from([T_AUTH, 0, 0, 0, 8, 0, 0, 0, 0]);
const READY_IDLE = Buffer.from([T_READY, 0, 0, 0, 5, STATUS_IDLE]);
const TERMINATE = Buffer.from([T_TERMINATE, 0, 0, 0, 4]);
const DISCARD_ALL = queryMessage('DISCARD ALL');
const SSL_NO = Buffer.from('N');
/** A backend that does not answer DISCARD ALL (or close after Terminate) within this long is dropped. */
const RESET_TIMEOUT_MS = 5000;

/** @param {string} sql */
function queryMessage(sql) {
  const body = Buffer.from(`${sql}\0`, 'utf8');
  const msg = Buffer.allocUnsafe(5 + body.length);
  msg[0] = T_QUERY;
  msg.writeInt32BE(4 + body.length, 1);
  body.copy(msg, 5);
  return msg;
}

/** @param {import('ws').RawData} data */
const toBuffer = (data) => (Array.isArray(data) ? Buffer.concat(data) : Buffer.isBuffer(data) ? data : Buffer.from(data));

/**
 * The parameters of a protocol 3.0 StartupMessage (`key\0value\0 ... \0` after length and version), or null when
 * malformed.
 * @param {Buffer} msg the whole message
 * @returns {[string, string][] | null}
 */
function startupParams(msg) {
  /** @type {[string, string][]} */
  const params = [];
  let i = 8;
  for (;;) {
    if (i >= msg.length) return null;
    if (msg[i] === 0) return i === msg.length - 1 ? params : null;
    const k = msg.indexOf(0, i);
    if (k < 0) return null;
    const v = msg.indexOf(0, k + 1);
    if (v < 0) return null;
    params.push([msg.toString('utf8', i, k), msg.toString('utf8', k + 1, v)]);
    i = v + 1;
  }
}

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
  const counters = { clients: 0, backendsOpened: 0, reused: 0, resetsSkipped: 0 };
  let closing = false;

  /**
   * Plain mode: one TCP connection for this WebSocket, bytes piped both ways. Also used in pool mode for what is
   * not pooled (CancelRequest, other protocol versions, replication), with the bytes already read as `first`.
   * @param {import('ws').WebSocket} ws
   * @param {Target} target
   * @param {Buffer} [first]
   * @returns {(buf: Buffer) => void} sends client bytes upstream
   */
  function pipe(ws, target, first) {
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
  }

  // -------------------------------------------------------------------------------------------------------------
  // Session pooling

  /** Idle backends by pool key, most recently used last. @type {Map<string, Backend[]>} */
  const idle = new Map();
  /** Backends resetting (DISCARD ALL in flight) by pool key, counted against maxIdle. @type {Map<string, number>} */
  const resetting = new Map();
  /** Every live backend, for close(). @type {Set<Backend>} */
  const backends = new Set();
  let pooledIdle = 0;

  /**
   * One TCP connection to Postgres; outlives its clients when pooled. Parses the backend's message framing
   * incrementally (type byte, int32 length including itself) and the frontend's, without copying message bodies
   * except the few it must read or record.
   */
  class Backend {
    /**
     * @param {Target} target
     * @param {string} key
     * @param {Buffer} startup the client's StartupMessage, sent as is
     */
    constructor(target, key, startup) {
      this.target = target;
      this.key = key;
      /** @type {'startup' | 'active' | 'resetting' | 'idle' | 'closed'} */
      this.state = 'startup';
      /** False once the backend asked for authentication or said something unexpected at startup. */
      this.poolable = true;
      /** @type {Buffer[]} ParameterStatus and BackendKeyData messages of its startup, as sent */
      this.recorded = [];
      /** @type {Buffer | null} what a client reusing this backend is told at its startup */
      this.startupReply = null;
      /** ReadyForQuery messages owed by the backend: one for the startup, then one per Q, Sync or FunctionCall. */
      this.owed = 1;
      /** Status byte of the latest ReadyForQuery. */
      this.status = 0;
      /** An extended-protocol message was sent after the last Sync (the backend may be skipping to a Sync). */
      this.unsynced = false;
      this.resetFailed = false;
      /** What the current client did to the session: nothing, or something DISCARD ALL must undo. */
      this.watch = new SessionWatch();
      /** @type {ClientSession | null} */
      this.client = null;
      /** @type {NodeJS.Timeout | undefined} idle timeout, or the reset / terminate deadline */
      this.timer = undefined;
      // Backend → client framing state.
      this.hdr = Buffer.allocUnsafe(5);
      this.hdrLen = 0;
      this.inType = 0;
      /** Body bytes of the current backend message still to come. */
      this.inLeft = 0;
      /** @type {Buffer | null} the current backend message being assembled (only when its content is needed) */
      this.capture = null;
      this.capOff = 0;
      // Client → backend framing state.
      /** Length bytes of the current client message still to read (0 at a message boundary or in its body). */
      this.outLenNeed = 0;
      this.outLen = 0;
      /** Bytes of the current client message still to come. */
      this.outLeft = 0;
      /** The type of the current client message. */
      this.outType = 0;

      counters.backendsOpened += 1;
      backends.add(this);
      const tcp = net.connect({ host: target.host, port: target.port });
      this.tcp = tcp;
      tcp.setNoDelay(true);
      // net.Socket queues writes made before it is connected.
      tcp.write(startup);
      tcp.on('data', (chunk) => {
        this.onData(chunk);
      });
      tcp.on('error', (e) => {
        if (this.client) {
          log(`pg proxy: ${target.host}:${target.port}: ${e.message}`);
          this.client.ws.close(1011, 'upstream connection failed');
        }
      });
      tcp.on('close', () => {
        this.closed();
      });
    }

    /** @param {Buffer} chunk */
    onData(chunk) {
      const client = this.client;
      if (this.parked()) {
        // Nothing is owed while idle (a FATAL before a shutdown, say): drop it.
        this.terminate();
        return;
      }
      if (client && client.ws.readyState === client.ws.OPEN) client.ws.send(chunk, { binary: true });
      const n = chunk.length;
      let i = 0;
      while (i < n) {
        if (this.inLeft > 0) {
          const k = Math.min(this.inLeft, n - i);
          if (this.capture) {
            chunk.copy(this.capture, this.capOff, i, i + k);
            this.capOff += k;
          }
          this.inLeft -= k;
          i += k;
          if (this.inLeft === 0 && this.capture) {
            const msg = this.capture;
            this.capture = null;
            this.message(this.inType, msg, 0, msg.length);
          }
          continue;
        }
        if (this.parked()) {
          // Bytes after the ReadyForQuery that ended a reset: unexpected, not worth keeping this backend.
          this.terminate();
          return;
        }
        if (this.hdrLen > 0 || i + 5 > n) {
          // A header split across chunks.
          const k = Math.min(5 - this.hdrLen, n - i);
          chunk.copy(this.hdr, this.hdrLen, i, i + k);
          this.hdrLen += k;
          i += k;
          if (this.hdrLen < 5) break;
          this.hdrLen = 0;
          if (!this.begin(this.hdr, 0)) return;
          continue;
        }
        const len = chunk.readInt32BE(i + 1);
        if (len >= 4 && i + 1 + len <= n) {
          // The common case: the whole message is in this chunk.
          const type = /** @type {number} */ (chunk[i]);
          this.message(type, chunk, i, i + 1 + len);
          i += 1 + len;
          continue;
        }
        if (!this.begin(chunk, i)) return;
        i += 5;
      }
    }

    /** @returns {boolean} idle in the pool or closed: no backend bytes are expected */
    parked() {
      return this.state === 'idle' || this.state === 'closed';
    }

    /**
     * Starts a backend message whose body continues in later chunks (or is empty).
     * @param {Buffer} buf
     * @param {number} at offset of the 5-byte header in buf
     * @returns {boolean} false when the stream is not valid protocol (the backend is then closed)
     */
    begin(buf, at) {
      const type = /** @type {number} */ (buf[at]);
      const len = buf.readInt32BE(at + 1);
      if (len < 4) {
        this.protocolError();
        return false;
      }
      this.inType = type;
      this.inLeft = len - 4;
      if (this.wants(type)) {
        this.capture = Buffer.allocUnsafe(1 + len);
        buf.copy(this.capture, 0, at, at + 5);
        this.capOff = 5;
        if (this.inLeft === 0) {
          const msg = this.capture;
          this.capture = null;
          this.message(type, msg, 0, msg.length);
        }
      } else {
        this.capture = null;
        if (this.inLeft === 0) this.message(type, null, 0, 0);
      }
      return true;
    }

    /** @param {number} type @returns {boolean} whether message() needs this message's bytes */
    wants(type) {
      return type === T_READY || (this.state === 'startup' && (type === T_AUTH || type === T_PARAMETER_STATUS || type === T_BACKEND_KEY));
    }

    /**
     * One complete backend message; its bytes are buf[start, end) when wanted (see wants), else buf may be null.
     * @param {number} type
     * @param {Buffer | null} buf
     * @param {number} start
     * @param {number} end
     */
    message(type, buf, start, end) {
      if (type === T_READY) {
        this.owed -= 1;
        this.status = buf && end - start === 6 ? /** @type {number} */ (buf[start + 5]) : 0;
        if (this.owed < 0) this.poolable = false; // an answer we did not see asked for: do not trust the count
        if (this.state === 'startup') {
          this.state = 'active';
          this.startupReply = Buffer.concat([AUTH_OK, ...this.recorded, READY_IDLE]);
          this.recorded = [];
        } else if (this.state === 'resetting' && this.owed === 0) {
          this.resetDone();
        }
        return;
      }
      if (this.state === 'startup') {
        if (type === T_AUTH) {
          // AuthenticationOk is int32 0; anything else is a challenge: this backend was authenticated by its client.
          if (!buf || end - start < 9 || buf.readInt32BE(start + 5) !== 0) this.poolable = false;
        } else if ((type === T_PARAMETER_STATUS || type === T_BACKEND_KEY) && buf) {
          this.recorded.push(Buffer.from(buf.subarray(start, end)));
        } else if (type !== T_NOTICE) {
          // ErrorResponse, NegotiateProtocolVersion...: not something to replay to another client.
          this.poolable = false;
        }
      } else if (this.state === 'resetting' && type === T_ERROR) {
        this.resetFailed = true;
      }
    }

    /**
     * Client bytes: forwarded, except a Terminate, which ends the client's use of this backend.
     * @param {Buffer} chunk
     */
    fromClient(chunk) {
      if (this.state === 'closed') return; // its client is being closed too
      const n = chunk.length;
      let i = 0;
      while (i < n) {
        if (this.outLenNeed > 0) {
          this.outLen = this.outLen * 256 + /** @type {number} */ (chunk[i]);
          this.outLenNeed -= 1;
          i += 1;
          if (this.outLenNeed === 0) {
            if (this.outLen < 4 || this.outLen > 0x7fffffff) {
              this.protocolError();
              return;
            }
            this.outLeft = this.outLen - 4;
            this.watch.start(this.outType, this.outLeft);
          }
          continue;
        }
        if (this.outLeft > 0) {
          const k = Math.min(this.outLeft, n - i);
          this.watch.data(chunk.subarray(i, i + k));
          this.outLeft -= k;
          i += k;
          continue;
        }
        const type = /** @type {number} */ (chunk[i]);
        this.outType = type;
        if (type === T_TERMINATE) {
          if (i > 0) this.tcp.write(chunk.subarray(0, i));
          this.client?.leave();
          return;
        }
        if (type === T_QUERY || type === T_SYNC || type === T_FUNCTION_CALL) {
          this.owed += 1;
          if (type === T_SYNC) this.unsynced = false;
        } else if (EXTENDED.has(type)) {
          this.unsynced = true;
        }
        if (i + 5 <= n) {
          const len = chunk.readInt32BE(i + 1);
          if (len < 4) {
            this.protocolError();
            return;
          }
          this.outLeft = len - 4;
          this.watch.start(type, this.outLeft);
          i += 5;
        } else {
          this.outLenNeed = 4;
          this.outLen = 0;
          i += 1;
        }
      }
      this.tcp.write(chunk);
    }

    /**
     * Hands this idle backend to a new client, answering its startup as the backend answered its own.
     * @param {ClientSession} client
     */
    reuse(client) {
      this.unlist();
      this.state = 'active';
      this.owed = 0;
      this.status = STATUS_IDLE;
      this.unsynced = false;
      this.client = client;
      this.watch.reset();
      if (this.startupReply) client.ws.send(this.startupReply, { binary: true });
    }

    /** The client left (Terminate, close or error): pool this backend if it is clean, else close it. */
    release() {
      this.client = null;
      if (this.state === 'startup') {
        this.terminate();
        return;
      }
      if (this.state !== 'active') return;
      const atBoundary = this.outLeft === 0 && this.outLenNeed === 0 && this.inLeft === 0 && this.hdrLen === 0;
      const clean = this.poolable && !closing && this.owed === 0 && this.status === STATUS_IDLE && !this.unsynced && atBoundary;
      if (!clean || (idle.get(this.key)?.length ?? 0) + (resetting.get(this.key) ?? 0) >= maxIdle) {
        this.terminate();
        return;
      }
      if (!this.watch.dirty) {
        // Nothing the client sent changed the session: it goes back to the pool as it is, with no DISCARD ALL.
        counters.resetsSkipped += 1;
        this.resetFailed = false;
        this.resetDone();
        return;
      }
      this.state = 'resetting';
      resetting.set(this.key, (resetting.get(this.key) ?? 0) + 1);
      this.resetFailed = false;
      this.owed = 1;
      this.tcp.write(DISCARD_ALL);
      this.timer = setTimeout(() => {
        this.terminate();
      }, RESET_TIMEOUT_MS).unref();
    }

    /** DISCARD ALL answered: into the idle pool, unless it failed. */
    resetDone() {
      this.unlist();
      this.state = 'active'; // out of the resetting count, so terminate() does not count it out again
      if (this.resetFailed || this.status !== STATUS_IDLE || closing || !this.poolable) {
        this.terminate();
        return;
      }
      this.state = 'idle';
      const list = idle.get(this.key);
      if (list) list.push(this);
      else idle.set(this.key, [this]);
      pooledIdle += 1;
      this.timer = setTimeout(() => {
        this.terminate();
      }, idleTimeoutMs).unref();
    }

    /** Out of the idle list or the resetting count, timer cleared; the state is left to the caller. */
    unlist() {
      clearTimeout(this.timer);
      this.timer = undefined;
      if (this.state === 'idle') {
        const list = idle.get(this.key);
        const at = list ? list.indexOf(this) : -1;
        if (list && at >= 0) {
          list.splice(at, 1);
          pooledIdle -= 1;
          if (list.length === 0) idle.delete(this.key);
        }
      } else if (this.state === 'resetting') {
        const n = (resetting.get(this.key) ?? 1) - 1;
        if (n > 0) resetting.set(this.key, n);
        else resetting.delete(this.key);
      }
    }

    /** Closes the session politely (Terminate), or at once when it cannot take a message now. */
    terminate() {
      if (this.state === 'closed') return;
      this.unlist();
      this.state = 'closed';
      if (this.tcp.connecting || this.outLeft > 0 || this.outLenNeed > 0) {
        this.tcp.destroy();
        return;
      }
      this.tcp.end(TERMINATE);
      // Postgres closes after a Terminate once it reads it; do not wait forever for one stuck in a query.
      this.timer = setTimeout(() => this.tcp.destroy(), RESET_TIMEOUT_MS).unref();
    }

    /** Not the Postgres protocol: drop the backend and its client. */
    protocolError() {
      log(`pg proxy: ${this.target.host}:${this.target.port}: not the Postgres protocol, connection closed`);
      this.destroy();
      this.client?.ws.close(1011, 'protocol error');
    }

    destroy() {
      if (this.state !== 'closed') this.unlist();
      this.state = 'closed';
      this.tcp.destroy();
    }

    /** The TCP connection is gone. */
    closed() {
      if (this.state !== 'closed') this.unlist();
      this.state = 'closed';
      clearTimeout(this.timer);
      backends.delete(this);
      // Its client, if any, is closed (1000, or 1011 already sent on an error), as with a plain pipe.
      this.client?.leave();
    }
  }

  /** One WebSocket client in pool mode: reads its startup, then uses a backend (pooled or new) until it leaves. */
  class ClientSession {
    /**
     * @param {import('ws').WebSocket} ws
     * @param {Target} target
     */
    constructor(ws, target) {
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
          this.piped = pipe(this.ws, this.target, b);
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
      const pooled = idle.get(key)?.at(-1);
      /** @type {Backend} */
      let backend;
      if (pooled) {
        counters.reused += 1;
        pooled.reuse(this);
        backend = pooled;
      } else {
        backend = new Backend(this.target, key, startup);
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
    if (!poolOpts) {
      const send = pipe(ws, target);
      ws.on('message', (data) => {
        send(toBuffer(data));
      });
      return;
    }
    const session = new ClientSession(ws, target);
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
    stats: () => ({ ...counters, pooledIdle }),
    close: async () => {
      closing = true;
      for (const b of backends) b.destroy();
      for (const s of sockets) s.destroy();
      for (const c of wss.clients) c.terminate();
      await new Promise((resolve) => wss.close(() => resolve(undefined)));
    },
  };
}
