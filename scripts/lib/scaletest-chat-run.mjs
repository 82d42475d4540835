// @ts-check
/**
 * One chat of the scale test: its stream (a ChatStream, which reconnects and resumes by itself), its turns, and the
 * checks on the durable messages the server sent it.
 */
import { why } from './scaletest-client.mjs';

/** @typedef {import('./scaletest-client.mjs').Api} Api */

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

/** @typedef {import('@chatd-edge/sdk').StreamEvent} StreamEvent */

/**
 * One chat: its stream, its turns, and what its client saw. The checks read the frames as the server sent them
 * (the SDK's `frame` event, before its own dedupe), so a duplicate or out-of-order durable message from the server
 * is still counted; the SDK reconnects and resumes (after the last durable id it has) by itself.
 */
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
    /** @type {import('@chatd-edge/sdk').ChatStream | null} */
    this.stream = null;
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
    try {
      this.chatId = (await this.shared.api.client.createChat({ content: text, model_config_id: modelConfigId })).id;
    } catch (e) {
      this.active = null;
      this.shared.error(`POST /chats: ${why(e)}`);
      return null;
    }
    const postMs = performance.now() - t0;
    try {
      await this.connect();
    } catch (e) {
      this.active = null;
      this.shared.error(`stream connect: ${why(e)}`);
      return null;
    }
    return await this.finish(wait, postMs, t0);
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
    try {
      const sent = await this.shared.api.client.sendMessage(String(this.chatId), { content: text });
      // Queued (202) would mean the chat was still busy: the previous `waiting` was not the end of its turn.
      if (!('message' in sent)) throw new Error('answered 202: the message was queued behind a busy chat');
    } catch (e) {
      this.active = null;
      this.shared.error(`POST /messages: ${why(e)}`);
      return null;
    }
    return await this.finish(wait, performance.now() - t0, t0);
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
   * Opens the chat's stream (after_id=0); resolves once its first frame is in, rejects when the stream ends first
   * (a refused upgrade that retrying cannot fix). Later drops are the SDK's to repair: it reconnects after the last
   * durable id it holds, and each drop is counted here.
   * @returns {Promise<void>}
   */
  connect() {
    const stream = this.shared.api.client.stream(String(this.chatId), { afterId: 0 });
    this.stream = stream;
    stream.on('frame', (f) => {
      this.onFrame(f.events);
    });
    stream.on('open', (e) => {
      this.connectedOnce = true;
      if (e.reconnected) this.reconnects += 1;
    });
    stream.on('disconnect', (e) => {
      if (e.error) {
        this.shared.error(`stream reconnect: ${e.error.message}`);
        return;
      }
      this.unexpectedCloses += 1;
      this.shared.error(`stream closed by the server (code ${e.code})`);
    });
    stream.on('close', (e) => {
      if (e.error) this.shared.error(`stream ended: ${e.error.message}`);
    });
    return stream.until((x) => x.connected, { timeoutMs: this.shared.turnTimeoutMs });
  }

  /** @param {readonly StreamEvent[]} events */
  onFrame(events) {
    const now = performance.now();
    for (const ev of events) {
      switch (ev.type) {
        case 'message':
          this.onMessage(ev.message.id);
          break;
        case 'message_part': {
          const a = this.active;
          if (!a) break;
          const seq = ev.message_part.seq;
          if (a.firstPartAt === null) a.firstPartAt = now;
          if (seq > a.maxSeq + 1) this.partGaps += 1;
          a.maxSeq = Math.max(a.maxSeq, seq);
          break;
        }
        case 'status': {
          const s = ev.status;
          this.status = s.status;
          if ((s.status === 'waiting' || s.status === 'error') && this.active?.posted) {
            if (s.status === 'error') this.shared.error(`turn ended in error (${String(s.last_error?.kind)}): ${String(s.last_error?.message)}`);
            this.active.resolve({ status: s.status, at: now });
          }
          break;
        }
        case 'error':
          this.shared.error(`stream error event (${ev.error.kind}): ${ev.error.message}`);
          break;
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
    void this.stream?.close(0);
  }

  /**
   * Closes the stream as a well-behaved client does (close frame 1000, wait for the server's), giving up after
   * `timeoutMs`. Used when a chat is done in the middle of a run.
   * @param {number} [timeoutMs]
   * @returns {Promise<void>}
   */
  async closeGracefully(timeoutMs = 2000) {
    await this.stream?.close(timeoutMs);
  }
}

/**
 * Every live message id of a chat, from GET /messages (the SDK's after_id paging, 200 a page).
 * @param {Api} api
 * @param {string} chatId
 * @returns {Promise<number[]>}
 */
export async function serverMessageIds(api, chatId) {
  /** @type {number[]} */
  const ids = [];
  for await (const m of api.client.messages(chatId, { pageSize: 200 })) ids.push(m.id);
  return ids;
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
