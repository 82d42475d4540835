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
 *   describe_files[=true] reply with what images and files the last user message carried (their count, media types
 *                        and decoded sizes): `Saw 1 image: image/png 68 bytes; 0 files.` (tests prove the model saw them).
 *   title_reply="text"   a chat's title request (its system message starts "You write the title of a chat.") is
 *                        answered with this text (default "Mock title"). A title request takes no other knob but:
 *   title_error_status=N  answer the title request with HTTP N instead (a failing title model).
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
 *
 * This file is the server and the /v1 routes. Its parts: mock-llm-knobs.mjs (knobs, directives), mock-llm-plan.mjs
 * (what a request is answered), mock-llm-reply.mjs (writing it, streamed or not), mock-llm-tools.mjs (tool calls),
 * mock-llm-gates.mjs (gates) and mock-llm-control.mjs (the /__mock/* routes).
 */
import http from 'node:http';
import { sleep } from './abortable-sleep.mjs';
import { Gates } from './mock-llm-gates.mjs';
import { handleControl } from './mock-llm-control.mjs';
import { MockError } from './mock-llm-knobs.mjs';
import { errorKind, plan } from './mock-llm-plan.mjs';
import { sendCompletion, sendError, sendJson } from './mock-llm-reply.mjs';
import { assertPortFree, listenOn } from './ports.mjs';
import { readBody } from './read-body.mjs';

export { parseDirectives } from './mock-llm-knobs.mjs';

/** @typedef {import('./mock-llm-knobs.mjs').MockConfig} MockConfig */

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

const DEFAULT_MODELS = ['mock-model', 'mock-mini', 'gpt-4o-mini'];
const MAX_BODY_BYTES = 16 * 1024 * 1024;
const bodyTooLarge = () => new MockError(413, `mock: request body over ${MAX_BODY_BYTES} bytes`);
const CREDENTIAL_HEADERS = new Set(['authorization', 'proxy-authorization', 'api-key', 'x-api-key']);

/** Epoch milliseconds with sub-millisecond fractions (monotonic within the process). */
const epochMs = () => performance.timeOrigin + performance.now();

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
 * The body as JSON: null when empty, badJson when it is not JSON.
 * @param {string} raw
 * @returns {{ body: unknown, badJson: boolean }}
 */
function parseBody(raw) {
  if (raw.trim() === '') return { body: null, badJson: false };
  try {
    return { body: JSON.parse(raw), badJson: false };
  } catch {
    return { body: null, badJson: true };
  }
}

/**
 * @typedef {object} ApiContext
 * @property {RecordedRequest[]} requests
 * @property {number} maxRecorded
 * @property {boolean} requireAuth
 * @property {string[]} models
 * @property {() => MockConfig} knobs   the global knobs now in force
 * @property {() => number} nextSeq     the next response's number
 * @property {Gates} gates
 * @property {(line: string) => void} log
 */

/**
 * Answers one /v1/* request (recorded), or throws a MockError.
 * @param {ApiContext} ctx
 * @param {{ req: http.IncomingMessage, res: http.ServerResponse, signal: AbortSignal, method: string, path: string,
 *   body: unknown, badJson: boolean }} r
 */
async function handleApi(ctx, { req, res, signal, method, path, body, badJson }) {
  const { requests, log } = ctx;
  /** @type {RecordedRequest} */
  const record = { method, path: req.url ?? path, headers: recordHeaders(req.headers), body, started_at: epochMs() };
  requests.push(record);
  if (requests.length > ctx.maxRecorded) requests.splice(0, requests.length - ctx.maxRecorded);
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
  if (ctx.requireAuth && !auth) {
    throw new MockError(401, "You didn't provide an API key (Authorization: Bearer <key>).", 'invalid_request_error', 'missing_api_key');
  }
  // Always refused, whether or not keys are required, so tests can exercise a rejected key.
  if (auth?.[1]?.trim() === 'bad-key') throw new MockError(401, 'Incorrect API key provided: bad-key.', 'invalid_request_error', 'invalid_api_key');
  if (isModels) {
    const created = 1_700_000_000;
    return sendJson(res, 200, { object: 'list', data: ctx.models.map((id) => ({ id, object: 'model', created, owned_by: 'chatd-mock' })) });
  }
  if (badJson) throw new MockError(400, 'We could not parse the JSON body of your request.', 'invalid_request_error', 'invalid_json');

  const p = plan(body, ctx.knobs());
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
  if (cfg.gate !== undefined && (cfg.error_status !== undefined || !p.stream) && !(await ctx.gates.pass(cfg.gate, signal))) return;
  if (cfg.error_status !== undefined) {
    const kind = errorKind(cfg.error_status);
    throw new MockError(cfg.error_status, `mock: error_status=${cfg.error_status}`, kind.type, kind.code);
  }
  await sendCompletion(res, p, ctx.nextSeq(), { signal, gates: ctx.gates, log, label: `${method} ${path}` });
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
  const gates = new Gates();
  const reset = () => {
    requests.length = 0;
    globalConfig = {};
    gates.clear();
  };
  const knobs = () => globalConfig;
  /** @type {import('./mock-llm-control.mjs').MockState} */
  const control = { knobs, setKnobs: (next) => (globalConfig = next), reset, requests, gates };
  /** @type {ApiContext} */
  const api = { requests, maxRecorded, requireAuth, models, knobs, nextSeq: () => (seq += 1), gates, log };

  /**
   * @param {http.IncomingMessage} req
   * @param {http.ServerResponse} res
   * @param {AbortSignal} signal
   * @param {string} path
   */
  const handle = async (req, res, signal, path) => {
    const method = req.method ?? 'GET';
    const r = { req, res, signal, method, path, ...parseBody(await readBody(req, MAX_BODY_BYTES, bodyTooLarge)) };
    if (path.startsWith('/__mock/')) await handleControl(control, r);
    else await handleApi(api, r);
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

  const actualPort = await listenOn(server, host, port);
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
