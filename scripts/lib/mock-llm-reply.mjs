// @ts-check
/**
 * How the mock LLM writes its answers: JSON bodies and OpenAI-style errors, and a planned completion as a
 * `chat.completion` or as its server-sent event stream (deltas, gate, drop_after, tool calls, usage, [DONE]).
 */
import { sleep } from './abortable-sleep.mjs';
import { splitDeltas } from './mock-llm-plan.mjs';
import { messageToolCalls, toolCallDeltas, wireCalls } from './mock-llm-tools.mjs';

/**
 * @param {import('node:http').ServerResponse} res
 * @param {number} status
 * @param {unknown} body
 * @param {Record<string, string>} [headers]
 */
export function sendJson(res, status, body, headers = {}) {
  if (res.destroyed || res.headersSent) return;
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': String(Buffer.byteLength(text)),
    ...headers,
  });
  res.end(text);
}

/**
 * @param {import('node:http').ServerResponse} res
 * @param {import('./mock-llm-knobs.mjs').MockError} e
 */
export const sendError = (res, e) => sendJson(res, e.status, { error: { message: e.message, type: e.type, param: null, code: e.code } });

/**
 * @typedef {object} ReplyContext
 * @property {AbortSignal} signal   aborted when the client goes away
 * @property {import('./mock-llm-gates.mjs').Gates} gates
 * @property {(line: string) => void} log
 * @property {string} label         `METHOD path`, for the log
 */

/**
 * Answers a planned completion, streamed or not.
 * @param {import('node:http').ServerResponse} res
 * @param {import('./mock-llm-plan.mjs').Plan} p
 * @param {number} seq  the response's number: its id is `chatcmpl-mock-<seq>`, its tool call ids `call_<seq>_<i>`
 * @param {ReplyContext} ctx
 */
export async function sendCompletion(res, p, seq, ctx) {
  const id = `chatcmpl-mock-${seq}`;
  const calls = p.toolCalls ? wireCalls(p.toolCalls, seq) : [];
  const created = Math.floor(Date.now() / 1000);
  if (p.stream) {
    await streamCompletion(res, p, { id, created, calls }, ctx);
    return;
  }
  ctx.log(`mock-llm: ${ctx.label} 200 (${p.usage.completion_tokens} tokens)`);
  sendJson(res, 200, {
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

/**
 * A writer of SSE events that waits for the delay before every event but the first, and for drain.
 * @param {import('node:http').ServerResponse} res
 * @param {AbortSignal} signal
 * @param {number} delayMs
 * @returns {(data: string) => Promise<boolean>}  false once the client is gone
 */
function eventWriter(res, signal, delayMs) {
  let first = true;
  return async (data) => {
    if (!first) {
      const ok = delayMs > 0 ? await sleep(delayMs, signal) : await new Promise((r) => setImmediate(() => r(!signal.aborted)));
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
}

/**
 * The completion as server-sent events.
 * @param {import('node:http').ServerResponse} res
 * @param {import('./mock-llm-plan.mjs').Plan} p
 * @param {{ id: string, created: number, calls: import('./mock-llm-tools.mjs').WireCall[] }} head
 * @param {ReplyContext} ctx
 */
async function streamCompletion(res, p, { id, created, calls }, { signal, gates, log, label }) {
  const { cfg } = p;
  res.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache',
    connection: 'keep-alive',
    'x-accel-buffering': 'no',
  });
  res.flushHeaders();
  const usageField = p.includeUsage ? { usage: null } : {};
  const send = eventWriter(res, signal, cfg.chunk_delay_ms ?? 0);
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
    log(`mock-llm: ${label} client went away after ${sent} deltas`);
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
    log(`mock-llm: ${label} waiting at gate '${cfg.gate ?? ''}' after ${sent} deltas`);
    return await gates.pass(cfg.gate ?? '', signal);
  };
  for (const piece of splitDeltas(p.reply)) {
    if (cfg.drop_after !== undefined && sent >= cfg.drop_after) break;
    if (!(await atGate(false))) return gone();
    if (!(await send(chunk({ content: piece })))) return gone();
    sent += 1;
  }
  if (!(await atGate(true))) return gone();
  if (cfg.drop_after !== undefined && sent >= cfg.drop_after) {
    log(`mock-llm: ${label} dropped after ${sent} deltas (drop_after)`);
    // The deltas written so far reach the client first (a write's callback runs once it is handed to the kernel), so
    // the client always sees exactly drop_after deltas before the connection dies, however busy the machine.
    await new Promise((r) => (res.socket && !res.socket.destroyed ? res.socket.write('', () => r(undefined)) : r(undefined)));
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
  log(`mock-llm: ${label} 200 stream (${sent} deltas)`);
}
