// @ts-check
/**
 * The parts of the Postgres wire protocol the WebSocket proxy (scripts/lib/pg-ws-proxy.mjs) reads and writes: startup
 * codes, message type bytes, the few messages it sends itself, and the parameters of a StartupMessage.
 * https://www.postgresql.org/docs/current/protocol-message-formats.html
 */

// Startup-phase codes (the int32 after the length of an untyped first message).
export const PROTOCOL_3_0 = 196608;
export const SSL_REQUEST = 80877103;
export const GSSENC_REQUEST = 80877104;
/** Postgres refuses longer startup packets (MAX_STARTUP_PACKET_LENGTH). */
export const MAX_STARTUP = 10000;

// Message type bytes.
export const T_QUERY = 0x51; // 'Q'
export const T_SYNC = 0x53; // 'S' (frontend Sync; backend ParameterStatus has the same letter)
export const T_FUNCTION_CALL = 0x46; // 'F', answered by one ReadyForQuery like Q
export const T_TERMINATE = 0x58; // 'X'
export const T_READY = 0x5a; // 'Z'
export const T_AUTH = 0x52; // 'R'
export const T_PARAMETER_STATUS = 0x53; // 'S'
export const T_BACKEND_KEY = 0x4b; // 'K'
export const T_ERROR = 0x45; // 'E'
export const T_NOTICE = 0x4e; // 'N'
export const STATUS_IDLE = 0x49; // 'I'
/** Frontend messages of the extended protocol: after one of them, the backend waits for a Sync. */
export const EXTENDED = new Set([0x50 /* P */, 0x42 /* B */, 0x45 /* E */, 0x44 /* D */, 0x43 /* C */, 0x48 /* H */]);

export const AUTH_OK = Buffer.from([T_AUTH, 0, 0, 0, 8, 0, 0, 0, 0]);
export const READY_IDLE = Buffer.from([T_READY, 0, 0, 0, 5, STATUS_IDLE]);
export const TERMINATE = Buffer.from([T_TERMINATE, 0, 0, 0, 4]);
export const DISCARD_ALL = queryMessage('DISCARD ALL');
export const SSL_NO = Buffer.from('N');

/** @param {string} sql */
export function queryMessage(sql) {
  const body = Buffer.from(`${sql}\0`, 'utf8');
  const msg = Buffer.allocUnsafe(5 + body.length);
  msg[0] = T_QUERY;
  msg.writeInt32BE(4 + body.length, 1);
  body.copy(msg, 5);
  return msg;
}

/**
 * The parameters of a protocol 3.0 StartupMessage (`key\0value\0 ... \0` after length and version), or null when
 * malformed.
 * @param {Buffer} msg the whole message
 * @returns {[string, string][] | null}
 */
export function startupParams(msg) {
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
