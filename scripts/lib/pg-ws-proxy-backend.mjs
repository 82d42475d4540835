// @ts-check
/**
 * One Postgres connection of the WebSocket proxy's session pool (scripts/lib/pg-ws-proxy-pool.mjs): it follows the
 * message framing both ways to know when the session is between requests, and goes through startup, active,
 * resetting (DISCARD ALL), idle in the pool, and closed.
 */
import net from 'node:net';
import { SessionWatch } from './pg-session-state.mjs';
import { AUTH_OK, DISCARD_ALL, EXTENDED, READY_IDLE, STATUS_IDLE, TERMINATE, T_AUTH, T_BACKEND_KEY, T_ERROR, T_FUNCTION_CALL, T_NOTICE, T_PARAMETER_STATUS, T_QUERY, T_READY, T_SYNC, T_TERMINATE } from './pg-wire.mjs';

/** @typedef {import('./pg-ws-proxy-pool.mjs').SessionPool} SessionPool */
/** @typedef {import('./pg-ws-proxy-pool.mjs').ClientSession} ClientSession */
/** @typedef {import('./pg-ws-proxy-pool.mjs').Target} Target */

/** A backend that does not answer DISCARD ALL (or close after Terminate) within this long is dropped. */
const RESET_TIMEOUT_MS = 5000;

/**
 * One TCP connection to Postgres; outlives its clients when pooled. Parses the backend's message framing
 * incrementally (type byte, int32 length including itself) and the frontend's, without copying message bodies
 * except the few it must read or record.
 */
export class Backend {
  /**
   * @param {SessionPool} pool
   * @param {Target} target
   * @param {string} key
   * @param {Buffer} startup the client's StartupMessage, sent as is
   */
  constructor(pool, target, key, startup) {
    this.pool = pool;
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

    pool.opened(this);
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
        pool.log(`pg proxy: ${target.host}:${target.port}: ${e.message}`);
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
    const clean = this.poolable && !this.pool.closing && this.owed === 0 && this.status === STATUS_IDLE && !this.unsynced && atBoundary;
    if (!clean || this.pool.full(this.key)) {
      this.terminate();
      return;
    }
    if (!this.watch.dirty) {
      // Nothing the client sent changed the session: it goes back to the pool as it is, with no DISCARD ALL.
      this.pool.counters.resetsSkipped += 1;
      this.resetFailed = false;
      this.resetDone();
      return;
    }
    this.state = 'resetting';
    this.pool.resetStarted(this.key);
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
    if (this.resetFailed || this.status !== STATUS_IDLE || this.pool.closing || !this.poolable) {
      this.terminate();
      return;
    }
    this.state = 'idle';
    this.pool.park(this);
    this.timer = setTimeout(() => {
      this.terminate();
    }, this.pool.idleTimeoutMs).unref();
  }

  /** Out of the idle list or the resetting count, timer cleared; the state is left to the caller. */
  unlist() {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.state === 'idle') this.pool.unpark(this);
    else if (this.state === 'resetting') this.pool.resetEnded(this.key);
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
    this.pool.log(`pg proxy: ${this.target.host}:${this.target.port}: not the Postgres protocol, connection closed`);
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
    this.pool.forget(this);
    // Its client, if any, is closed (1000, or 1011 already sent on an error), as with a plain pipe.
    this.client?.leave();
  }
}
