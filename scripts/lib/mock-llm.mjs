// @ts-check
/**
 * A mock OpenAI-compatible LLM server (node:http, no framework) for the Worker's tests, the scale test and
 * `npm run dev`. Its wire format follows the OpenAI Chat Completions API closely enough for the Vercel AI SDK's
 * `@ai-sdk/openai-compatible` and `@ai-sdk/openai` (chat model) providers.
 *
 * Endpoints (all JSON; errors are OpenAI-style `{ error: { message, type, param, code } }`):
 *   POST /v1/chat/completions  `chat.completion`, or with `stream: true` server-sent events: one
 *                              `chat.completion.chunk` with `delta.role`, optional `delta.reasoning_content` chunks,
 *                              the content in word-sized deltas, a chunk with `finish_reason`, with
 *                              `stream_options.include_usage` a last chunk with `choices: []` and `usage`, then
 *                              `data: [DONE]`.
 *   GET  /v1/models            a few model ids (any model id is accepted by chat completions).
 *   GET  /__mock/config        the global knobs now in force.
 *   POST /__mock/config        JSON object of knobs merged into the global ones (`null` removes one); answers the
 *                              knobs now in force. 400 on an unknown knob or a bad value.
 *   POST /__mock/reset         forget the recorded requests and the global knobs.
 *   GET  /__mock/requests      the recorded requests, oldest first (for callers in another process, e.g. workerd).
 *                              Each has `started_at` and, once its response is over (sent, failed or abandoned by the
 *                              client), `ended_at`: epoch milliseconds with fractions, for checks of overlapping calls.
 *   GET  /__mock/gates/NAME    a gate's state `{name, open, waiting, arrived}` (`arrived`: requests that reached it).
 *                              `?waiting=N` (and `timeout_ms`, default 10000) answers once N requests wait at it, or
 *                              at the timeout with `timed_out: true`: tests wait on this event instead of sleeping.
 *   POST /__mock/gates/NAME/open   opens the gate: the requests waiting at it go on, later ones pass it.
 *   POST /__mock/gates/NAME/close  closes it again.
 * /__mock/* needs no API key, is not recorded, and refuses requests that carry an Origin header (web pages).
 * /v1/* needs `Authorization: Bearer <non-empty key>` (unless
 * started with `requireAuth: false`); the key `bad-key` always gets 401 `invalid_api_key`.
 *
 * Replies are deterministic: `Echo: <text of the last user message>` (directives removed, trimmed), split into
 * word-sized deltas (`"Echo:"`, `" hello"`, `" world"`), `finish_reason: "stop"`. Token counts are words
 * (whitespace-separated runs, directives not counted): prompt_tokens = words of the text of all messages,
 * completion_tokens = words of the reply + words of the reasoning, reasoning_tokens = words of the reasoning,
 * cached_tokens = 0 unless set by a knob. Message content may be a string or an array of `{type:'text',text}`
 * parts (joined with "\n"); other parts are ignored. Ids are `chatcmpl-mock-<n>`; `model` echoes the request's.
 *
 * Knobs: set globally through POST /__mock/config, or per request by a directive anywhere in the LAST user message,
 * which wins over the global value knob by knob. Only the last user message is searched; the directive is removed
 * from the echoed text (the recorded request keeps it). Several directives in one message merge, later wins.
 *     [[mock latency_ms=200 chunks=50 error_status=500 reply="hello there" reasoning hang]]
 * Values are bare (`200`, `true`) or JSON double-quoted strings (`"a \"b\""`); a bare knob name means `true`.
 * An unknown knob or a bad value answers 400 (so typos do not pass silently).
 *   latency_ms=N         wait N ms before the first byte of the response (status line included), errors too.
 *   chunk_delay_ms=N     wait N ms between stream chunks (default 0: each chunk still gets its own write).
 *   chunks=N             the reply is exactly N words (the reply's words repeated and cut at N), so a stream has
 *                        exactly N content deltas. Applies to non-streaming replies too.
 *   error_status=N       answer HTTP N (400..599) with an OpenAI-style error body instead of a completion.
 *                        Note the AI SDK retries 429 and 5xx (maxRetries, default 2), re-sending the same message.
 *   hang[=true]          read the request and never answer (until the client gives up or the server closes).
 *   reply="text"         reply with this text instead of the echo.
 *   reasoning[="text"]   before the content, emit reasoning as `delta.reasoning_content` word deltas (non-streaming:
 *                        `message.reasoning_content`); `true` means "Thinking about: <echo text>".
 *   finish_reason=S      the finish reason to report (default "stop"; e.g. "length", "content_filter").
 *   cached_tokens=N      usage.prompt_tokens_details.cached_tokens (capped at prompt_tokens).
 *   drop_after=N         streaming only: destroy the connection abruptly after N content deltas (no finish chunk,
 *                        no [DONE]), to test an upstream that dies mid-stream.
 *   gate="name"          after `gate_after` content deltas (default 0: before the first one), wait until the gate
 *                        of that name is opened (POST /__mock/gates/name/open); an error reply (error_status) or a
 *                        non-streaming one waits before it is sent. Gates start closed.
 *                        A test holds a turn open with it for exactly as long as it needs, whatever the machine's speed.
 *   gate_after=N         the content deltas sent before waiting at the gate.
 *   gate_step=N          the gate holds only the request at tool step N (see below); other steps pass it.
 *
 * Tool calls (OpenAI `tool_calls`; scripts/lib/mock-llm-tools.mjs): the requests of one turn with tools all carry the
 * same last user message, so the same knobs; the STEP of a request is the number of assistant messages with
 * `tool_calls` after that user message. Step N asks for the calls the plan has for step N; past the plan the model
 * answers in text: `reply`, else `Tools said: <each tool message after the last tool step, joined by " | ">`.
 *   tool="srv__add"      ask for one call of this tool (the name the model was offered) ...
 *   tool_args="{...}"    ... with these arguments (a JSON object; default {}) ...
 *   tool_times=N         ... in each of the first N steps (default 1): tool_times=100 keeps a turn calling tools.
 *   tools="[[...],[...]]"  the whole plan instead: a JSON array of steps, each an array of {"name", "args"}; a step of
 *                        two calls asks for both in one response (parallel calls). Ids are `call_<response>_<i>`.
 *   tool_text="..."      text streamed before the calls in each tool step (default none).
 * A tool step streams its calls as OpenAI does (per call: id and name, then the arguments in two pieces) and finishes
 * with `finish_reason: "tool_calls"`; without streaming, `message.tool_calls`.
 *
 * Client aborts are noticed (the response's 'close' event) and stop the writing at once; bad JSON answers 400.
 */
import http from 'node:http';
import { messageToolCalls, toolCallDeltas, toolPlan, toolResultsReply, toolStep, wireCalls } from './mock-llm-tools.mjs';
import { assertPortFree } from './ports.mjs';
import { sleep } from './abortable-sleep.mjs';

/**
 * @typedef {object} MockConfig
 * @property {number} [latency_ms]
 * @property {number} [chunk_delay_ms]
 * @property {number} [chunks]
 * @property {number} [error_status]
 * @property {boolean} [hang]
 * @property {string} [reply]
 * @property {string | boolean} [reasoning]
 * @property {string} [finish_reason]
 * @property {number} [cached_tokens]
 * @property {number} [drop_after]
 * @property {string} [gate]
 * @property {number} [gate_after]
 * @property {number} [gate_step]
 * @property {string} [tool]
 * @property {string} [tool_args]
 * @property {number} [tool_times]
 * @property {string} [tools]
 * @property {string} [tool_text]
 */

/**
 * @typedef {object} RecordedRequest
 * @property {string} method
 * @property {string} path                     path and query as received
 * @property {Record<string, string>} headers  lower-case names; credentials cut to their first characters
 * @property {unknown} body                    the parsed JSON body, or null (no body, or not JSON)
 * @property {number} started_at               epoch ms (with fractions) when the request arrived
 * @property {number} [ended_at]               epoch ms when its response ended (sent, failed, or the client left)
 */

/**
 * @typedef {object} MockLlm
 * @property {string} url                  e.g. http://127.0.0.1:54331 (the OpenAI base URL is `${url}/v1`)
 * @property {number} port
 * @property {RecordedRequest[]} requests  live array, oldest first
 * @property {() => void} reset            forget the recorded requests and the global knobs
 * @property {() => Promise<void>} close   stop listening and drop every open connection (hanging ones too)
 */

/** Knob name → kind of value it takes. */
const KNOBS = /** @type {const} */ ({
  latency_ms: 'ms',
  chunk_delay_ms: 'ms',
  chunks: 'count',
  error_status: 'status',
  hang: 'boolean',
  reply: 'string',
  reasoning: 'string-or-boolean',
  finish_reason: 'string',
  cached_tokens: 'count0',
  drop_after: 'count0',
  gate: 'string',
  gate_after: 'count0',
  gate_step: 'count0',
  tool: 'string',
  tool_args: 'string',
  tool_times: 'count',
  tools: 'string',
  tool_text: 'string',
});

const DEFAULT_MODELS = ['mock-model', 'mock-mini', 'gpt-4o-mini'];
const MAX_BODY_BYTES = 16 * 1024 * 1024;
const MAX_MS = 10 * 60 * 1000;
const MAX_CHUNKS = 10_000_000;
const DIRECTIVE = /\[\[mock((?:\s+[A-Za-z_]+(?:=(?:"(?:[^"\\]|\\.)*"|[^\s"\]]+))?)*)\s*\]\]/g;
const DIRECTIVE_IN_TEXT = new RegExp(`[ \\t]*${DIRECTIVE.source}[ \\t]*`, 'g');
const DIRECTIVE_ARG = /([A-Za-z_]+)(?:=("(?:[^"\\]|\\.)*"|[^\s"\]]+))?/g;
const CREDENTIAL_HEADERS = new Set(['authorization', 'proxy-authorization', 'api-key', 'x-api-key']);

class MockError extends Error {
  /**
   * @param {number} status
   * @param {string} message
   * @param {string} type
   * @param {string | null} code
   */
  constructor(status, message, type = 'invalid_request_error', code = null) {
    super(message);
    this.status = status;
    this.type = type;
    this.code = code;
  }
}

/**
 * @param {string} knob
 * @returns {keyof typeof KNOBS}
 */
function knobName(knob) {
  if (!Object.hasOwn(KNOBS, knob)) {
    throw new MockError(400, `mock: unknown knob '${knob}' (known: ${Object.keys(KNOBS).join(', ')})`);
  }
  return /** @type {keyof typeof KNOBS} */ (knob);
}

/**
 * @param {string} knob
 * @param {unknown} value
 * @returns {MockConfig}  `{ [knob]: value }` checked and normalized
 */
function checkKnob(knob, value) {
  const kind = KNOBS[knobName(knob)];
  const bad = (/** @type {string} */ want) =>
    new MockError(400, `mock: knob '${knob}' wants ${want}, got ${JSON.stringify(value)}`);
  /** @param {number} min @param {number} max */
  const int = (min, max) => {
    const n = typeof value === 'string' && /^\d+$/.test(value) ? Number(value) : value;
    if (typeof n !== 'number' || !Number.isInteger(n) || n < min || n > max) throw bad(`an integer ${min}..${max}`);
    return n;
  };
  /** @returns {boolean | undefined} */
  const bool = () => (value === true || value === 'true' || value === '1' ? true : value === false || value === 'false' || value === '0' ? false : undefined);
  switch (kind) {
    case 'ms':
      return { [knob]: int(0, MAX_MS) };
    case 'count':
      return { [knob]: int(1, MAX_CHUNKS) };
    case 'count0':
      return { [knob]: int(0, MAX_CHUNKS) };
    case 'status':
      return { [knob]: int(400, 599) };
    case 'boolean': {
      const b = bool();
      if (b === undefined) throw bad('true or false');
      return { [knob]: b };
    }
    case 'string':
      if (typeof value !== 'string') throw bad('a string');
      return { [knob]: value };
    case 'string-or-boolean': {
      const b = bool();
      if (b !== undefined) return { [knob]: b };
      if (typeof value !== 'string' || value === '') throw bad('true, false or a non-empty string');
      return { [knob]: value };
    }
  }
}

/**
 * Finds `[[mock ...]]` directives in a message text.
 * @param {string} text
 * @returns {{ config: MockConfig, text: string }}  the knobs (later wins) and the text without the directives, trimmed
 */
export function parseDirectives(text) {
  /** @type {MockConfig} */
  let config = {};
  for (const m of text.matchAll(DIRECTIVE)) {
    for (const a of (m[1] ?? '').matchAll(DIRECTIVE_ARG)) {
      const name = a[1] ?? '';
      const raw = a[2];
      /** @type {unknown} */
      let value = true;
      if (raw !== undefined) {
        if (raw.startsWith('"')) {
          try {
            value = JSON.parse(raw);
          } catch {
            throw new MockError(400, `mock: knob '${name}' has a badly quoted value ${raw}`);
          }
        } else value = raw;
      }
      config = { ...config, ...checkKnob(name, value) };
    }
  }
  return { config, text: text.replace(DIRECTIVE_IN_TEXT, ' ').trim() };
}

/** Epoch milliseconds with sub-millisecond fractions (monotonic within the process). */
const epochMs = () => performance.timeOrigin + performance.now();

/** @param {string} text */
const countWords = (text) => (text.match(/\S+/g) ?? []).length;

/**
 * @param {unknown} content  a message's `content`: a string, or an array of parts
 * @returns {string}
 */
function contentText(content) {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return '';
  /** @type {string[]} */
  const parts = [];
  for (const p of /** @type {unknown[]} */ (content)) {
    if (typeof p === 'object' && p !== null && 'text' in p && typeof p.text === 'string') parts.push(p.text);
  }
  return parts.join('\n');
}

/**
 * @param {string} text
 * @returns {string[]}  word-sized pieces that concatenate back to the text (trailing whitespace dropped)
 */
const splitDeltas = (text) => text.match(/\s*\S+/g) ?? [];

/**
 * @param {unknown} v
 * @returns {v is Record<string, unknown>}
 */
const isObject = (v) => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * @param {unknown} body  the parsed request body
 * @param {MockConfig} global
 */
function plan(body, global) {
  if (!isObject(body)) throw new MockError(400, 'The request body must be a JSON object.');
  const model = body.model;
  if (typeof model !== 'string' || model === '') throw new MockError(400, "'model' is required (a non-empty string).", 'invalid_request_error', 'missing_model');
  const messages = body.messages;
  if (!Array.isArray(messages) || messages.length === 0) {
    throw new MockError(400, "'messages' must be a non-empty array.", 'invalid_request_error', 'invalid_messages');
  }
  let promptTokens = 0;
  let lastUser = -1;
  messages.forEach((m, i) => {
    if (!isObject(m) || typeof m.role !== 'string') {
      throw new MockError(400, `'messages[${i}]' must be an object with a 'role'.`, 'invalid_request_error', 'invalid_messages');
    }
    if (m.role === 'user') lastUser = i;
    promptTokens += countWords(contentText(m.content).replace(DIRECTIVE, ' '));
  });
  const last = /** @type {Record<string, unknown> | undefined} */ (messages[lastUser]);
  const { config: local, text } = parseDirectives(last ? contentText(last.content) : '');
  /** @type {MockConfig} */
  const cfg = { ...global, ...local };
  /** @type {import('./mock-llm-tools.mjs').PlannedCall[][] | null} */
  let steps;
  try {
    steps = toolPlan(cfg);
  } catch (e) {
    throw new MockError(400, e instanceof Error ? e.message : String(e));
  }
  const step = toolStep(messages, lastUser);
  const toolCalls = steps && step < steps.length && (steps[step]?.length ?? 0) > 0 ? (steps[step] ?? null) : null;
  // The gate of another step does not hold this request.
  if (cfg.gate_step !== undefined && cfg.gate_step !== step) delete cfg.gate;
  let reply = toolCalls ? (cfg.tool_text ?? '') : (cfg.reply ?? (step > 0 ? toolResultsReply(messages, lastUser) : null) ?? `Echo: ${text}`.trim());
  if (cfg.chunks !== undefined && !toolCalls) {
    const words = reply.match(/\S+/g) ?? ['word'];
    const out = [];
    for (let i = 0; i < cfg.chunks; i++) out.push(words[i % words.length]);
    reply = out.join(' ');
  }
  const reasoning =
    cfg.reasoning === true ? `Thinking about: ${text}`.trim() : typeof cfg.reasoning === 'string' ? cfg.reasoning : '';
  const reasoningTokens = countWords(reasoning);
  const completionTokens = countWords(reply) + reasoningTokens + (toolCalls ? countWords(JSON.stringify(toolCalls)) : 0);
  const streamOptions = body.stream_options;
  return {
    cfg,
    model,
    stream: body.stream === true,
    includeUsage: isObject(streamOptions) && streamOptions.include_usage === true,
    reply,
    reasoning,
    toolCalls,
    finishReason: toolCalls ? 'tool_calls' : (cfg.finish_reason ?? 'stop'),
    usage: {
      prompt_tokens: promptTokens,
      completion_tokens: completionTokens,
      total_tokens: promptTokens + completionTokens,
      prompt_tokens_details: { cached_tokens: Math.min(cfg.cached_tokens ?? 0, promptTokens) },
      completion_tokens_details: { reasoning_tokens: reasoningTokens },
    },
  };
}

/** @param {number} status */
function errorKind(status) {
  if (status === 401) return { type: 'invalid_request_error', code: 'invalid_api_key' };
  if (status === 403) return { type: 'permission_error', code: 'permission_denied' };
  if (status === 404) return { type: 'invalid_request_error', code: 'model_not_found' };
  if (status === 429) return { type: 'requests', code: 'rate_limit_exceeded' };
  if (status >= 500) return { type: 'server_error', code: 'server_error' };
  return { type: 'invalid_request_error', code: 'invalid_request' };
}

/** @param {http.IncomingHttpHeaders} raw */
function recordHeaders(raw) {
  /** @type {Record<string, string>} */
  const headers = {};
  for (const [name, v] of Object.entries(raw)) {
    if (v === undefined) continue;
    let value = Array.isArray(v) ? v.join(', ') : v;
    if (CREDENTIAL_HEADERS.has(name)) {
      const m = /^(\S+\s+)?(.*)$/s.exec(value);
      const scheme = m?.[1] ?? '';
      const secret = m?.[2] ?? '';
      value = `${scheme}${secret.slice(0, 6)}${secret.length > 6 ? '...' : ''}`;
    }
    headers[name] = value;
  }
  return headers;
}

/**
 * @param {http.IncomingMessage} req
 * @returns {Promise<string>}
 */
async function readBody(req) {
  /** @type {Buffer[]} */
  const chunks = [];
  let size = 0;
  for await (const c of req) {
    const b = /** @type {Buffer} */ (c);
    size += b.length;
    if (size > MAX_BODY_BYTES) throw new MockError(413, `mock: request body over ${MAX_BODY_BYTES} bytes`);
    chunks.push(b);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * @param {{ port?: number, host?: string, log?: (line: string) => void, requireAuth?: boolean,
 *   models?: string[], maxRecorded?: number }} [opts]
 *   port 0 (default) picks a free one; maxRecorded (default 10000) keeps only the newest requests.
 * @returns {Promise<MockLlm>}
 */
export async function startMockLlm({
  port = 0,
  host = '127.0.0.1',
  log = () => {},
  requireAuth = true,
  models = DEFAULT_MODELS,
  maxRecorded = 10_000,
} = {}) {
  if (port !== 0 && host === '127.0.0.1') await assertPortFree(port, 'the mock LLM', 'CHATD_MOCK_LLM_PORT');
  /** @type {RecordedRequest[]} */
  const requests = [];
  /** @type {MockConfig} */
  let globalConfig = {};
  let seq = 0;
  /** @type {Map<string, { open: boolean, arrived: number, waiters: Set<() => void>, watchers: Set<() => void> }>} */
  const gates = new Map();
  /** @param {string} name */
  const gate = (name) => {
    let g = gates.get(name);
    if (!g) {
      g = { open: false, arrived: 0, waiters: new Set(), watchers: new Set() };
      gates.set(name, g);
    }
    return g;
  };
  /** @param {string} name */
  const gateState = (name) => {
    const g = gate(name);
    return { name, open: g.open, waiting: g.waiters.size, arrived: g.arrived };
  };
  /**
   * Waits at a gate until it opens; false when the client went away first.
   * @param {string} name
   * @param {AbortSignal} signal
   * @returns {Promise<boolean>}
   */
  const passGate = (name, signal) => {
    const g = gate(name);
    g.arrived += 1;
    if (g.open) return Promise.resolve(!signal.aborted);
    return new Promise((resolve) => {
      const go = () => {
        g.waiters.delete(go);
        signal.removeEventListener('abort', go);
        for (const w of g.watchers) w();
        resolve(!signal.aborted);
      };
      g.waiters.add(go);
      signal.addEventListener('abort', go, { once: true });
      for (const w of g.watchers) w();
    });
  };
  /**
   * Answers once `waiting` requests wait at the gate, or at the timeout.
   * @param {string} name
   * @param {number} waiting
   * @param {number} timeoutMs
   * @param {AbortSignal} signal
   */
  const watchGate = (name, waiting, timeoutMs, signal) => {
    const g = gate(name);
    return new Promise((resolve) => {
      const check = () => {
        if (g.waiters.size < waiting && !signal.aborted) return;
        done(false);
      };
      const timer = setTimeout(() => done(true), timeoutMs);
      const done = (/** @type {boolean} */ timedOut) => {
        clearTimeout(timer);
        g.watchers.delete(check);
        signal.removeEventListener('abort', check);
        resolve({ ...gateState(name), ...(timedOut ? { timed_out: true } : {}) });
      };
      g.watchers.add(check);
      signal.addEventListener('abort', check, { once: true });
      check();
    });
  };

  /**
   * @param {http.ServerResponse} res
   * @param {number} status
   * @param {unknown} body
   * @param {Record<string, string>} [headers]
   */
  const sendJson = (res, status, body, headers = {}) => {
    if (res.destroyed || res.headersSent) return;
    const text = JSON.stringify(body);
    res.writeHead(status, {
      'content-type': 'application/json',
      'content-length': String(Buffer.byteLength(text)),
      ...headers,
    });
    res.end(text);
  };
  /**
   * @param {http.ServerResponse} res
   * @param {MockError} e
   */
  const sendError = (res, e) =>
    sendJson(res, e.status, { error: { message: e.message, type: e.type, param: null, code: e.code } });

  /**
   * @param {http.IncomingMessage} req
   * @param {http.ServerResponse} res
   * @param {AbortSignal} signal
   * @param {string} path
   */
  const handle = async (req, res, signal, path) => {
    const method = req.method ?? 'GET';
    const raw = await readBody(req);
    /** @type {unknown} */
    let body = null;
    let badJson = false;
    if (raw.trim() !== '') {
      try {
        body = JSON.parse(raw);
      } catch {
        badJson = true;
      }
    }

    if (path.startsWith('/__mock/')) {
      // Browsers send Origin with every cross-origin request; no tool of ours does. A web page must not drive the mock.
      if (req.headers.origin !== undefined) throw new MockError(403, 'mock: /__mock/* refuses requests from web pages (Origin header)');
      if (badJson) throw new MockError(400, 'mock: the body is not valid JSON');
      if (path === '/__mock/config' && method === 'GET') return sendJson(res, 200, globalConfig);
      if (path === '/__mock/config' && method === 'POST') {
        if (!isObject(body)) throw new MockError(400, 'mock: POST /__mock/config wants a JSON object of knobs');
        /** @type {MockConfig} */
        let next = { ...globalConfig };
        /** @type {Set<string>} */
        const removed = new Set();
        for (const [k, v] of Object.entries(body)) {
          if (v === null) removed.add(knobName(k));
          else next = { ...next, ...checkKnob(k, v) };
        }
        next = Object.fromEntries(Object.entries(next).filter(([k]) => !removed.has(k)));
        globalConfig = next;
        return sendJson(res, 200, globalConfig);
      }
      if (path === '/__mock/reset' && method === 'POST') {
        reset();
        return sendJson(res, 200, { ok: true });
      }
      if (path === '/__mock/requests' && method === 'GET') return sendJson(res, 200, requests);
      const gm = /^\/__mock\/gates\/([A-Za-z0-9_.-]{1,100})(\/open|\/close)?$/.exec(path);
      if (gm) {
        const name = gm[1] ?? '';
        if (method === 'GET' && !gm[2]) {
          const q = new URL(req.url ?? '/', 'http://mock').searchParams;
          const waiting = Number(q.get('waiting') ?? '0');
          const timeoutMs = Number(q.get('timeout_ms') ?? '10000');
          if (!Number.isInteger(waiting) || waiting < 0 || !Number.isInteger(timeoutMs) || timeoutMs < 0 || timeoutMs > MAX_MS) {
            throw new MockError(400, 'mock: waiting and timeout_ms must be non-negative integers');
          }
          return sendJson(res, 200, waiting > 0 ? await watchGate(name, waiting, timeoutMs, signal) : gateState(name));
        }
        if (method === 'POST' && gm[2] === '/open') {
          const g = gate(name);
          g.open = true;
          const released = g.waiters.size;
          for (const w of [...g.waiters]) w();
          return sendJson(res, 200, { ...gateState(name), released });
        }
        if (method === 'POST' && gm[2] === '/close') {
          gate(name).open = false;
          return sendJson(res, 200, gateState(name));
        }
      }
      throw new MockError(404, `mock: no ${method} ${path}`, 'invalid_request_error', 'not_found');
    }

    /** @type {RecordedRequest} */
    const record = { method, path: req.url ?? path, headers: recordHeaders(req.headers), body, started_at: epochMs() };
    requests.push(record);
    if (requests.length > maxRecorded) requests.splice(0, requests.length - maxRecorded);
    res.once('close', () => {
      record.ended_at = epochMs();
    });

    const isChat = path === '/v1/chat/completions';
    const isModels = path === '/v1/models';
    if (!isChat && !isModels) throw new MockError(404, `Unknown request URL: ${method} ${path}.`, 'invalid_request_error', 'unknown_url');
    if ((isChat && method !== 'POST') || (isModels && method !== 'GET')) {
      throw new MockError(405, `Method ${method} not allowed on ${path}.`, 'invalid_request_error', 'method_not_allowed');
    }
    const auth = /^Bearer\s+(\S.*)$/i.exec(req.headers.authorization ?? '');
    if (requireAuth && !auth) {
      throw new MockError(401, "You didn't provide an API key (Authorization: Bearer <key>).", 'invalid_request_error', 'missing_api_key');
    }
    // Always refused, whether or not keys are required, so tests can exercise a rejected key.
    if (auth?.[1]?.trim() === 'bad-key') throw new MockError(401, 'Incorrect API key provided: bad-key.', 'invalid_request_error', 'invalid_api_key');
    if (isModels) {
      const created = 1_700_000_000;
      return sendJson(res, 200, { object: 'list', data: models.map((id) => ({ id, object: 'model', created, owned_by: 'chatd-mock' })) });
    }
    if (badJson) throw new MockError(400, 'We could not parse the JSON body of your request.', 'invalid_request_error', 'invalid_json');

    const p = plan(body, globalConfig);
    const { cfg } = p;
    if (cfg.hang === true) {
      log(`mock-llm: ${method} ${path} hanging`);
      await new Promise((resolve) => {
        if (signal.aborted) resolve(undefined);
        else signal.addEventListener('abort', () => resolve(undefined), { once: true });
      });
      return;
    }
    if (cfg.latency_ms !== undefined && cfg.latency_ms > 0 && !(await sleep(cfg.latency_ms, signal))) return;
    // A reply without content deltas (an error, or not streamed) waits at its gate before it is sent.
    if (cfg.gate !== undefined && (cfg.error_status !== undefined || !p.stream) && !(await passGate(cfg.gate, signal))) return;
    if (cfg.error_status !== undefined) {
      const kind = errorKind(cfg.error_status);
      throw new MockError(cfg.error_status, `mock: error_status=${cfg.error_status}`, kind.type, kind.code);
    }

    seq += 1;
    const id = `chatcmpl-mock-${seq}`;
    const calls = p.toolCalls ? wireCalls(p.toolCalls, seq) : [];
    const created = Math.floor(Date.now() / 1000);
    if (!p.stream) {
      log(`mock-llm: ${method} ${path} 200 (${p.usage.completion_tokens} tokens)`);
      return sendJson(res, 200, {
        id,
        object: 'chat.completion',
        created,
        model: p.model,
        system_fingerprint: null,
        choices: [
          {
            index: 0,
            message: {
              role: 'assistant',
              content: calls.length > 0 && !p.reply ? null : p.reply,
              ...(calls.length > 0 ? { tool_calls: messageToolCalls(calls) } : {}),
              ...(p.reasoning ? { reasoning_content: p.reasoning } : {}),
              refusal: null,
              annotations: [],
            },
            logprobs: null,
            finish_reason: p.finishReason,
          },
        ],
        usage: p.usage,
      });
    }

    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
    res.flushHeaders();
    const usageField = p.includeUsage ? { usage: null } : {};
    let first = true;
    /**
     * Writes one SSE event, waiting for the delay before every event but the first and for drain.
     * @param {string} data
     * @returns {Promise<boolean>}  false once the client is gone
     */
    const send = async (data) => {
      if (!first) {
        const delay = cfg.chunk_delay_ms ?? 0;
        const ok = delay > 0 ? await sleep(delay, signal) : await new Promise((r) => setImmediate(() => r(!signal.aborted)));
        if (!ok) return false;
      }
      first = false;
      if (signal.aborted || res.destroyed) return false;
      if (!res.write(`data: ${data}\n\n`)) {
        await new Promise((resolve) => {
          const done = () => {
            res.off('drain', done);
            signal.removeEventListener('abort', done);
            resolve(undefined);
          };
          res.on('drain', done);
          signal.addEventListener('abort', done, { once: true });
        });
      }
      return !signal.aborted && !res.destroyed;
    };
    /**
     * @param {Record<string, unknown>} delta
     * @param {string | null} finishReason
     */
    const chunk = (delta, finishReason = null) =>
      JSON.stringify({
        id,
        object: 'chat.completion.chunk',
        created,
        model: p.model,
        system_fingerprint: null,
        choices: [{ index: 0, delta, logprobs: null, finish_reason: finishReason }],
        ...usageField,
      });

    let sent = 0;
    const gone = () => {
      log(`mock-llm: ${method} ${path} client went away after ${sent} deltas`);
    };
    if (!(await send(chunk({ role: 'assistant', content: '', refusal: null })))) return gone();
    for (const piece of splitDeltas(p.reasoning)) {
      if (!(await send(chunk({ reasoning_content: piece })))) return gone();
    }
    // The gate is passed once: before content delta number gate_after, or after the last one when there are fewer.
    let gated = cfg.gate === undefined;
    /** @param {boolean} last */
    const atGate = async (last) => {
      if (gated || (!last && sent < (cfg.gate_after ?? 0))) return true;
      gated = true;
      log(`mock-llm: ${method} ${path} waiting at gate '${cfg.gate ?? ''}' after ${sent} deltas`);
      return await passGate(cfg.gate ?? '', signal);
    };
    for (const piece of splitDeltas(p.reply)) {
      if (cfg.drop_after !== undefined && sent >= cfg.drop_after) break;
      if (!(await atGate(false))) return gone();
      if (!(await send(chunk({ content: piece })))) return gone();
      sent += 1;
    }
    if (!(await atGate(true))) return gone();
    if (cfg.drop_after !== undefined && sent >= cfg.drop_after) {
      log(`mock-llm: ${method} ${path} dropped after ${sent} deltas (drop_after)`);
      res.destroy();
      return;
    }
    for (const delta of toolCallDeltas(calls)) {
      if (!(await send(chunk(delta)))) return gone();
    }
    if (!(await send(chunk({}, p.finishReason)))) return gone();
    if (p.includeUsage) {
      const usageChunk = { id, object: 'chat.completion.chunk', created, model: p.model, system_fingerprint: null, choices: [], usage: p.usage };
      if (!(await send(JSON.stringify(usageChunk)))) return gone();
    }
    if (!(await send('[DONE]'))) return gone();
    res.end();
    log(`mock-llm: ${method} ${path} 200 stream (${sent} deltas)`);
  };

  const server = http.createServer((req, res) => {
    const ac = new AbortController();
    res.on('close', () => ac.abort());
    res.on('error', () => ac.abort());
    req.on('error', () => ac.abort());
    const path = new URL(req.url ?? '/', 'http://mock').pathname;
    handle(req, res, ac.signal, path).catch((/** @type {unknown} */ e) => {
      if (e instanceof MockError) {
        if (!path.startsWith('/__mock/') || e.status !== 404) log(`mock-llm: ${req.method ?? ''} ${path} -> ${e.status}: ${e.message}`);
        sendError(res, e);
      } else {
        log(`mock-llm: ${req.method ?? ''} ${path}: ${e instanceof Error ? e.message : String(e)}`);
        if (!res.headersSent && !res.destroyed) sendError(res, new MockError(500, 'mock: internal error', 'server_error', 'server_error'));
        else res.destroy();
      }
    });
  });
  // Keep idle keep-alive sockets well past a client's reuse window: with Node's default 5 s, a client that reuses
  // a socket just as the server closes it sees the request fail ("The model call failed before completing").
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 66_000;
  server.on('clientError', (_e, socket) => socket.destroy());

  const reset = () => {
    requests.length = 0;
    globalConfig = {};
    // Nothing stays held by a gate of an earlier test.
    for (const g of gates.values()) for (const w of [...g.waiters]) w();
    gates.clear();
  };

  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host, port }, () => {
      server.off('error', reject);
      resolve(undefined);
    });
  });
  const addr = server.address();
  const actualPort = typeof addr === 'object' && addr ? addr.port : port;
  const urlHost = host.includes(':') ? `[${host}]` : host;
  return {
    url: `http://${urlHost}:${actualPort}`,
    port: actualPort,
    requests,
    reset,
    close: async () => {
      const closed = new Promise((resolve) => server.close(() => resolve(undefined)));
      server.closeAllConnections();
      await closed;
    },
  };
}
