// @ts-check
/**
 * The scale test's client side: a small JSON-over-HTTP helper with a keep-alive pool, the bootstrap (owner,
 * mock provider, model config), and one `ChatRun` per chat: its WebSocket stream, its turns, and the checks on
 * the durable messages it receives.
 */
import http from 'node:http';
import https from 'node:https';
import WebSocket from 'ws';

/** @param {unknown} v @returns {v is Record<string, unknown>} */
export const isRecord = (v) => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * @typedef {object} ApiResponse
 * @property {number} status
 * @property {unknown} body   parsed JSON, or the text when it is not JSON
 * @property {number} ms      round trip
 */

export class ApiError extends Error {
  /**
   * @param {string} what  e.g. "POST /api/v2/chats"
   * @param {ApiResponse} res
   */
  constructor(what, res) {
    const msg = isRecord(res.body) && typeof res.body.message === 'string' ? res.body.message : typeof res.body === 'string' ? res.body.slice(0, 200) : '';
    super(`${what} answered ${res.status}${msg ? `: ${msg}` : ''}`);
    this.status = res.status;
    this.what = what;
    this.serverMessage = msg;
  }
}

/** JSON over HTTP(S) with one keep-alive pool; knows the bearer token once set. */
export class Api {
  /**
   * @param {string} base   e.g. http://127.0.0.1:8787
   * @param {{ maxSockets: number }} opts
   */
  constructor(base, { maxSockets }) {
    this.base = new URL(base);
    this.secure = this.base.protocol === 'https:';
    this.agent = this.secure ? new https.Agent({ keepAlive: true, maxSockets }) : new http.Agent({ keepAlive: true, maxSockets });
    /** @type {string | null} */
    this.token = null;
  }

  /**
   * @param {string} method
   * @param {string} path   starting with /
   * @param {unknown} [body]
   * @returns {Promise<ApiResponse>}
   */
  request(method, path, body) {
    const payload = body === undefined ? null : Buffer.from(JSON.stringify(body));
    /** @type {http.OutgoingHttpHeaders} */
    const headers = { accept: 'application/json' };
    if (payload) {
      headers['content-type'] = 'application/json';
      headers['content-length'] = payload.length;
    }
    if (this.token) headers.authorization = `Bearer ${this.token}`;
    const started = performance.now();
    const mod = this.secure ? https : http;
    return new Promise((resolve, reject) => {
      const req = mod.request(new URL(path, this.base), { method, headers, agent: this.agent }, (res) => {
        /** @type {Buffer[]} */
        const chunks = [];
        res.on('data', (c) => chunks.push(/** @type {Buffer} */ (c)));
        res.on('error', reject);
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          /** @type {unknown} */
          let parsed = text;
          try {
            parsed = text ? JSON.parse(text) : null;
          } catch {
            // not JSON: keep the text
          }
          resolve({ status: res.statusCode ?? 0, body: parsed, ms: performance.now() - started });
        });
      });
      req.on('error', reject);
      req.setTimeout(120_000, () => req.destroy(new Error(`${method} ${path}: no answer within 120 s`)));
      if (payload) req.write(payload);
      req.end();
    });
  }

  /**
   * A request that must answer one of the given statuses; returns the body.
   * @param {string} method
   * @param {string} path
   * @param {unknown} body
   * @param {number[]} ok
   * @returns {Promise<unknown>}
   */
  async expect(method, path, body, ok) {
    const res = await this.request(method, path, body);
    if (!ok.includes(res.status)) throw new ApiError(`${method} ${path}`, res);
    return res.body;
  }

  /** @param {string} path */
  wsUrl(path) {
    const u = new URL(path, this.base);
    u.protocol = this.secure ? 'wss:' : 'ws:';
    return u.toString();
  }

  close() {
    this.agent.destroy();
  }
}

/**
 * @param {unknown} v
 * @param {string} field
 * @returns {string}
 */
function str(v, field) {
  if (isRecord(v) && typeof v[field] === 'string') return /** @type {string} */ (v[field]);
  throw new Error(`unexpected answer: no string ${field} in ${JSON.stringify(v).slice(0, 200)}`);
}

/**
 * Signs in as the owner: creates the first user, or (409: one exists) logs in with the same credentials.
 * @param {Api} api
 * @param {{ email: string, username: string, password: string }} who
 * @returns {Promise<{ token: string, userId: string, created: boolean }>}
 */
export async function signInOwner(api, who) {
  const first = await api.request('POST', '/api/v2/users/first', who);
  let created = false;
  /** @type {string} */
  let token;
  if (first.status === 201) {
    token = str(first.body, 'session_token');
    created = true;
  } else if (first.status === 409) {
    const login = await api.request('POST', '/api/v2/users/login', { email: who.email, password: who.password });
    if (login.status === 401) {
      throw new Error(`a first user already exists and ${who.email} cannot log in with the given password: pass --email and --password of an owner`);
    }
    if (login.status !== 201) throw new ApiError('POST /api/v2/users/login', login);
    token = str(login.body, 'session_token');
  } else {
    throw new ApiError('POST /api/v2/users/first', first);
  }
  api.token = token;
  const me = await api.expect('GET', '/api/v2/users/me', undefined, [200]);
  const roles = isRecord(me) && Array.isArray(me.roles) ? me.roles : [];
  if (!roles.includes('owner')) throw new Error(`${who.email} is not an owner; the scale test needs one (providers, stream counters)`);
  return { token, userId: str(me, 'id'), created };
}

/** @param {string} url */
const isLoopback = (url) => {
  try {
    return ['127.0.0.1', 'localhost', '[::1]', '::1'].includes(new URL(url).hostname);
  } catch {
    return false;
  }
};

/**
 * The model config the chats use, set up when missing:
 *   - `modelConfigId` when given (used as is);
 *   - else the live default, when its provider is `openai-compat` on this machine (a mock: a real model would
 *     be called chats × turns times, so it is refused unless named with --model-config);
 *   - else, with no default at all, an `openai-compat` provider on `mockBaseUrl` (created unless one exists with
 *     that base URL) and a default config `mock-echo` on it, compaction off.
 * @param {Api} api
 * @param {{ mockBaseUrl: string | null, modelConfigId: string | null, log: (line: string) => void }} opts
 * @returns {Promise<{ id: string, label: string, created: string[] }>}
 */
export async function ensureModel(api, { mockBaseUrl, modelConfigId, log }) {
  const configs = await api.expect('GET', '/api/v2/chats/model-configs', undefined, [200]);
  const list = Array.isArray(configs) ? configs.filter(isRecord) : [];
  const label = (/** @type {Record<string, unknown>} */ c) => `${String(c.provider)}/${String(c.model)} (${String(c.id)})`;
  if (modelConfigId) {
    const c = list.find((x) => x.id === modelConfigId);
    if (!c) throw new Error(`--model-config ${modelConfigId}: no live model config with that id`);
    return { id: modelConfigId, label: label(c), created: [] };
  }
  const providers = await api.expect('GET', '/api/v2/chats/providers', undefined, [200]);
  const plist = Array.isArray(providers) ? providers.filter(isRecord) : [];
  const def = list.find((c) => c.is_default === true);
  if (def) {
    const p = plist.find((x) => x.provider === def.provider);
    const base = p && typeof p.base_url === 'string' ? p.base_url : '';
    if (def.provider !== 'openai-compat' || !isLoopback(base)) {
      throw new Error(
        `the default model is ${label(def)} on ${base || 'its provider'}, not a local mock: the scale test would call it for every turn. ` +
          'Pass --model-config <id> to use it anyway, or make a mock the default.',
      );
    }
    return { id: str(def, 'id'), label: `${label(def)} via ${base}`, created: [] };
  }
  if (!mockBaseUrl) throw new Error('there is no default model config: pass --mock-url (the mock LLM base URL, …/v1) so one can be created');
  /** @type {string[]} */
  const created = [];
  const existing = plist.find((x) => x.provider === 'openai-compat');
  if (existing) {
    if (existing.base_url !== mockBaseUrl) {
      throw new Error(`an openai-compat provider already exists with base_url ${String(existing.base_url)}, not ${mockBaseUrl}; pass --model-config, or point it at the mock`);
    }
  } else {
    await api.expect('POST', '/api/v2/chats/providers', { provider: 'openai-compat', display_name: 'Mock LLM (scale test)', base_url: mockBaseUrl }, [201]);
    created.push(`provider openai-compat -> ${mockBaseUrl}`);
  }
  const cfg = await api.expect(
    'POST',
    '/api/v2/chats/model-configs',
    { provider: 'openai-compat', model: 'mock-echo', display_name: 'Mock echo (scale test)', context_limit: 1_000_000, compression_threshold: 100, is_default: true },
    [201],
  );
  const id = str(cfg, 'id');
  created.push(`default model config openai-compat/mock-echo (${id})`);
  for (const c of created) log(`created ${c}`);
  return { id, label: `openai-compat/mock-echo (${id}) via ${mockBaseUrl}`, created };
}

/** A FIFO counting semaphore. */
export class Semaphore {
  /** @param {number} n */
  constructor(n) {
    this.free = n;
    /** @type {(() => void)[]} */
    this.waiting = [];
    this.held = 0;
  }

  /** @returns {Promise<() => void>} the release function */
  async acquire() {
    if (this.free > 0) {
      this.free -= 1;
    } else {
      await new Promise((resolve) => {
        this.waiting.push(() => resolve(undefined));
      });
    }
    this.held += 1;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.held -= 1;
      const next = this.waiting.shift();
      if (next) next();
      else this.free += 1;
    };
  }
}

/**
 * Runs fn over items with at most `limit` at a time.
 * @template T, R
 * @param {readonly T[]} items
 * @param {number} limit
 * @param {(item: T, index: number) => Promise<R>} fn
 * @returns {Promise<R[]>}
 */
export async function mapLimit(items, limit, fn) {
  /** @type {R[]} */
  const out = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(/** @type {T} */ (items[i]), i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

/**
 * @typedef {object} TurnTiming
 * @property {number} turn          1-based
 * @property {number} postMs        the POST's round trip
 * @property {number | null} firstPartMs  POST sent -> first message_part of the turn (null: none seen)
 * @property {number} endMs         POST sent -> `waiting` (or `error`) status
 * @property {boolean} ok           ended in `waiting`
 */

/**
 * @typedef {object} Shared
 * @property {Api} api
 * @property {(key: string) => void} error      counts an error by message
 * @property {number} turnTimeoutMs
 */

/**
 * @typedef {object} ActiveTurn
 * @property {number} turn
 * @property {number} t0
 * @property {boolean} posted
 * @property {number | null} firstPartAt
 * @property {number} maxSeq
 * @property {(v: { status: string, at: number }) => void} resolve
 */

/** One chat: its stream, its turns, and what its client saw. */
export class ChatRun {
  /**
   * @param {number} index
   * @param {Shared} shared
   */
  constructor(index, shared) {
    this.index = index;
    this.shared = shared;
    /** @type {string | null} */
    this.chatId = null;
    /** @type {WebSocket | null} */
    this.ws = null;
    this.closing = false;
    /** The stream opened at least once. */
    this.connectedOnce = false;
    /** Durable message ids in the order they arrived (duplicates left out). */
    /** @type {number[]} */
    this.ids = [];
    this.seen = new Set();
    this.lastId = 0;
    this.duplicates = 0;
    this.outOfOrder = 0;
    /** @type {string[]} */
    this.examples = [];
    this.partGaps = 0;
    this.fullRefreshes = 0;
    this.reconnects = 0;
    this.unexpectedCloses = 0;
    /** @type {ActiveTurn | null} */
    this.active = null;
    /** @type {TurnTiming[]} */
    this.timings = [];
    this.turnsOk = 0;
    this.turnsFailed = 0;
    this.abandoned = false;
    this.status = '';
  }

  /**
   * Turn 1: POST /chats, then the stream (after_id=0), then waits for the turn's end.
   * @param {string} text
   * @param {string} modelConfigId
   * @returns {Promise<TurnTiming | null>}
   */
  async create(text, modelConfigId) {
    const t0 = performance.now();
    const wait = this.arm(1, t0);
    /** @type {ApiResponse} */
    let res;
    try {
      res = await this.shared.api.request('POST', '/api/v2/chats', { content: text, model_config_id: modelConfigId });
    } catch (e) {
      this.active = null;
      this.shared.error(`POST /chats: ${e instanceof Error ? e.message : String(e)}`);
      return null;
    }
    if (res.status !== 201 || !isRecord(res.body) || typeof res.body.id !== 'string') {
      this.active = null;
      this.shared.error(new ApiError('POST /chats', res).message);
      return null;
    }
    this.chatId = res.body.id;
    try {
      await this.connect(0);
    } catch (e) {
      this.active = null;
      this.shared.error(`stream connect: ${e instanceof Error ? e.message : String(e)}`);
      return null;
    }
    return await this.finish(wait, res.ms, t0);
  }

  /**
   * A follow-up turn: POST /messages, then waits for `waiting`.
   * @param {number} turn
   * @param {string} text
   * @returns {Promise<TurnTiming | null>}
   */
  async send(turn, text) {
    const t0 = performance.now();
    const wait = this.arm(turn, t0);
    /** @type {ApiResponse} */
    let res;
    try {
      res = await this.shared.api.request('POST', `/api/v2/chats/${String(this.chatId)}/messages`, { content: text });
    } catch (e) {
      this.active = null;
      this.shared.error(`POST /messages: ${e instanceof Error ? e.message : String(e)}`);
      return null;
    }
    if (res.status !== 201) {
      // 202 would mean the chat was still busy: the previous `waiting` was not the end of its turn.
      this.active = null;
      this.shared.error(new ApiError('POST /messages', res).message);
      return null;
    }
    return await this.finish(wait, res.ms, t0);
  }

  /**
   * @param {number} turn
   * @param {number} t0
   * @returns {Promise<{ status: string, at: number }>}
   */
  arm(turn, t0) {
    return new Promise((resolve) => {
      this.active = { turn, t0, posted: true, firstPartAt: null, maxSeq: -1, resolve };
    });
  }

  /**
   * @param {Promise<{ status: string, at: number }>} wait
   * @param {number} postMs
   * @param {number} t0
   * @returns {Promise<TurnTiming | null>}
   */
  async finish(wait, postMs, t0) {
    const active = this.active;
    /** @type {NodeJS.Timeout | undefined} */
    let timer;
    const timeout = new Promise((resolve) => {
      timer = setTimeout(() => resolve(null), this.shared.turnTimeoutMs);
    });
    const end = /** @type {{ status: string, at: number } | null} */ (await Promise.race([wait, timeout]));
    clearTimeout(timer);
    this.active = null;
    if (!end || !active) {
      this.shared.error(`turn did not end within ${this.shared.turnTimeoutMs / 1000} s (last status seen: ${this.status || 'none'})`);
      return null;
    }
    const timing = {
      turn: active.turn,
      postMs,
      firstPartMs: active.firstPartAt === null ? null : active.firstPartAt - t0,
      endMs: end.at - t0,
      ok: end.status === 'waiting',
    };
    this.timings.push(timing);
    return timing;
  }

  /**
   * Opens (or re-opens) the stream after `afterId`; resolves once it is open.
   * @param {number} afterId
   * @returns {Promise<void>}
   */
  connect(afterId) {
    const url = this.shared.api.wsUrl(`/api/v2/chats/${String(this.chatId)}/stream${afterId > 0 ? `?after_id=${afterId}` : ''}`);
    const ws = new WebSocket(url, {
      headers: { authorization: `Bearer ${String(this.shared.api.token)}` },
      perMessageDeflate: false,
      handshakeTimeout: 60_000,
    });
    this.ws = ws;
    ws.on('message', (data) => {
      this.onFrame(String(data));
    });
    return new Promise((resolve, reject) => {
      ws.once('open', () => {
        this.connectedOnce = true;
        ws.on('close', (code) => {
          this.onClose(ws, code);
        });
        resolve();
      });
      ws.once('unexpected-response', (_req, res) => {
        reject(new Error(`upgrade answered ${res.statusCode ?? 0}`));
        res.resume();
        ws.terminate();
      });
      ws.once('error', (e) => {
        reject(e);
      });
    });
  }

  /**
   * @param {WebSocket} ws
   * @param {number} code
   */
  onClose(ws, code) {
    if (this.closing || ws !== this.ws) return;
    this.unexpectedCloses += 1;
    this.shared.error(`stream closed by the server (code ${code})`);
    // What a real client does: reconnect after the last durable id it holds.
    const retry = (/** @type {number} */ attempt) => {
      if (this.closing) return;
      this.reconnects += 1;
      this.connect(this.lastId).catch((/** @type {unknown} */ e) => {
        this.shared.error(`stream reconnect: ${e instanceof Error ? e.message : String(e)}`);
        if (attempt < 5) setTimeout(() => retry(attempt + 1), 200 * 2 ** attempt);
      });
    };
    setTimeout(() => retry(0), 100);
  }

  /** @param {string} text */
  onFrame(text) {
    /** @type {unknown} */
    let events;
    try {
      events = JSON.parse(text);
    } catch {
      this.shared.error('stream: a frame that is not JSON');
      return;
    }
    if (!Array.isArray(events)) {
      this.shared.error('stream: a frame that is not an array of events');
      return;
    }
    const now = performance.now();
    for (const ev of /** @type {unknown[]} */ (events)) {
      if (!isRecord(ev)) continue;
      switch (ev.type) {
        case 'message': {
          const m = ev.message;
          if (isRecord(m) && typeof m.id === 'number') this.onMessage(m.id);
          break;
        }
        case 'message_part': {
          const mp = ev.message_part;
          const a = this.active;
          if (!a || !isRecord(mp) || typeof mp.seq !== 'number') break;
          if (a.firstPartAt === null) a.firstPartAt = now;
          if (mp.seq > a.maxSeq + 1) this.partGaps += 1;
          a.maxSeq = Math.max(a.maxSeq, mp.seq);
          break;
        }
        case 'status': {
          const s = ev.status;
          if (!isRecord(s) || typeof s.status !== 'string') break;
          this.status = s.status;
          if ((s.status === 'waiting' || s.status === 'error') && this.active?.posted) {
            if (s.status === 'error') {
              const le = isRecord(s.last_error) ? s.last_error : {};
              this.shared.error(`turn ended in error (${String(le.kind)}): ${String(le.message)}`);
            }
            this.active.resolve({ status: s.status, at: now });
          }
          break;
        }
        case 'error': {
          const e = ev.error;
          if (isRecord(e)) this.shared.error(`stream error event (${String(e.kind)}): ${String(e.message)}`);
          break;
        }
        case 'full_refresh':
          this.fullRefreshes += 1;
          break;
        default:
          break;
      }
    }
  }

  /** @param {number} id */
  onMessage(id) {
    if (this.seen.has(id)) {
      this.duplicates += 1;
      if (this.examples.length < 5) this.examples.push(`duplicate ${id}`);
      return;
    }
    if (id < this.lastId) {
      this.outOfOrder += 1;
      if (this.examples.length < 5) this.examples.push(`${id} after ${this.lastId}`);
    }
    this.seen.add(id);
    this.ids.push(id);
    this.lastId = Math.max(this.lastId, id);
  }

  /** Ends the turn in flight as failed (the stack under test went away). */
  abortTurn() {
    this.active?.resolve({ status: 'aborted', at: performance.now() });
  }

  /** Drops the stream at once (end of the run). */
  close() {
    this.closing = true;
    const ws = this.ws;
    if (ws && ws.readyState !== WebSocket.CLOSED) ws.terminate();
  }

  /**
   * Closes the stream as a well-behaved client does (close frame 1000, wait for the server's), dropping it after
   * `timeoutMs`. Used when a chat is done in the middle of a run.
   * @param {number} [timeoutMs]
   * @returns {Promise<void>}
   */
  async closeGracefully(timeoutMs = 2000) {
    this.closing = true;
    const ws = this.ws;
    if (!ws || ws.readyState === WebSocket.CLOSED) return;
    await new Promise((resolve) => {
      const t = setTimeout(() => {
        ws.terminate();
        resolve(undefined);
      }, timeoutMs);
      ws.once('close', () => {
        clearTimeout(t);
        resolve(undefined);
      });
      ws.close(1000, 'done');
    });
  }
}

/**
 * Every live message id of a chat, from GET /messages (after_id paging, 200 a page).
 * @param {Api} api
 * @param {string} chatId
 * @returns {Promise<number[]>}
 */
export async function serverMessageIds(api, chatId) {
  /** @type {number[]} */
  const ids = [];
  let after = 0;
  for (;;) {
    const body = await api.expect('GET', `/api/v2/chats/${chatId}/messages?after_id=${after}&limit=200`, undefined, [200]);
    const msgs = isRecord(body) && Array.isArray(body.messages) ? body.messages.filter(isRecord) : [];
    for (const m of msgs) if (typeof m.id === 'number') ids.push(m.id);
    const last = msgs.at(-1);
    if (msgs.length < 200 || !last || typeof last.id !== 'number') return ids;
    after = last.id;
  }
}

/**
 * What a client saw compared with the server's list.
 * @param {readonly number[]} seen      ids in arrival order (no duplicates)
 * @param {readonly number[]} server    ascending
 * @returns {{ lost: number[], phantom: number[] }}
 */
export function compareIds(seen, server) {
  const s = new Set(seen);
  const v = new Set(server);
  return { lost: server.filter((id) => !s.has(id)), phantom: seen.filter((id) => !v.has(id)) };
}
