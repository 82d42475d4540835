// @ts-check
/**
 * Whether a client left session state behind on a pooled Postgres session, from what it sent: the pool then skips the
 * `DISCARD ALL` that would reset a session nothing changed (one statement fewer per driver connection). A session is
 * dirty after a named prepared statement (a Parse with a name) or a statement that changes session state: SET, RESET,
 * PREPARE, DEALLOCATE, DECLARE (a cursor may be WITH HOLD), LISTEN, UNLISTEN, LOAD, DISCARD, CREATE TEMP[ORARY], or a
 * call of set_config or a session-level advisory lock. Anything it cannot read (a statement longer than it looks at)
 * counts as dirty.
 */

const LOOK = 16 * 1024;
const DIRTY_START = /^(SET|RESET|PREPARE|DEALLOCATE|DECLARE|LISTEN|UNLISTEN|LOAD|DISCARD|CREATE\s+(GLOBAL\s+|LOCAL\s+)?TEMP(ORARY)?)\b/i;
const DIRTY_CALL = /\b(set_config|pg_advisory_lock|pg_advisory_lock_shared|pg_try_advisory_lock|pg_try_advisory_lock_shared)\s*\(/i;

/** @param {string} sql @returns {string} the statement after leading whitespace and comments */
function lead(sql) {
  let s = sql;
  for (;;) {
    const t = s.replace(/^\s+/, '');
    if (t.startsWith('--')) {
      const nl = t.indexOf('\n');
      s = nl < 0 ? '' : t.slice(nl + 1);
    } else if (t.startsWith('/*')) {
      const end = t.indexOf('*/');
      s = end < 0 ? '' : t.slice(end + 2);
    } else return t;
  }
}

/** @param {string} sql */
export function changesSession(sql) {
  return DIRTY_START.test(lead(sql)) || DIRTY_CALL.test(sql);
}

/** Watches the messages a client sends (type and body) and says whether the session stayed clean. */
export class SessionWatch {
  dirty = false;
  /** @type {Buffer | null} the start of the Query or Parse message being read */
  body = null;
  bodyOff = 0;
  type = 0;
  complete = false;

  /** A new message of `type` whose body is `len` bytes. */
  start(/** @type {number} */ type, /** @type {number} */ len) {
    this.body = null;
    if (this.dirty || (type !== 0x51 && type !== 0x50)) return;
    this.type = type;
    this.complete = len <= LOOK;
    this.body = Buffer.allocUnsafe(Math.min(len, LOOK));
    this.bodyOff = 0;
    if (len === 0) this.end();
  }

  /** Bytes of the current message's body. */
  data(/** @type {Buffer} */ chunk) {
    const b = this.body;
    if (!b) return;
    const k = Math.min(chunk.length, b.length - this.bodyOff);
    chunk.copy(b, this.bodyOff, 0, k);
    this.bodyOff += k;
    if (this.bodyOff === b.length) this.end();
  }

  end() {
    const b = this.body;
    this.body = null;
    if (!b) return;
    if (!this.complete) {
      this.dirty = true;
      return;
    }
    if (this.type === 0x51) {
      // Query: the SQL, NUL-terminated.
      this.dirty = changesSession(b.toString('utf8', 0, Math.max(0, b.indexOf(0))));
      return;
    }
    // Parse: the statement's name, then its SQL, each NUL-terminated.
    const nameEnd = b.indexOf(0);
    const sqlEnd = b.indexOf(0, nameEnd + 1);
    this.dirty = nameEnd !== 0 || sqlEnd < 0 || changesSession(b.toString('utf8', nameEnd + 1, sqlEnd));
  }

  reset() {
    this.dirty = false;
    this.body = null;
  }
}
