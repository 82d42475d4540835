// @ts-check
/**
 * What the mock LLM answers to one chat completion request (scripts/lib/mock-llm.mjs lists the rules): the knobs in
 * force, the reply or the tool calls of this step, reasoning, finish reason and token usage.
 */
import { DIRECTIVE, MockError, parseDirectives } from './mock-llm-knobs.mjs';
import { toolPlan, toolResultsReply, toolStep } from './mock-llm-tools.mjs';

/** How a chat's title request begins (TITLE_SYSTEM in durable-objects/room/titles.ts). */
export const TITLE_INSTRUCTIONS = 'You write the title of a chat.';

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
 * A data URL's media type and decoded size.
 * @param {unknown} url
 */
function dataUrl(url) {
  const m = typeof url === 'string' ? /^data:([^;,]+)(;base64)?,(.*)$/s.exec(url) : null;
  if (!m) return { mediaType: 'url', size: 0 };
  const body = m[3] ?? '';
  return { mediaType: m[1] ?? '', size: m[2] ? Buffer.from(body, 'base64').length : body.length };
}

/**
 * The `describe_files` reply: what images and files the message carried (OpenAI `image_url` parts and `file` parts with
 * `file_data`), e.g. `Saw 1 image: image/png 68 bytes; 1 file: a.pdf application/pdf 1024 bytes.`
 * @param {unknown} content
 */
export function describeFiles(content) {
  /** @type {string[]} */
  const images = [];
  /** @type {string[]} */
  const files = [];
  for (const p of Array.isArray(content) ? /** @type {unknown[]} */ (content) : []) {
    if (!isObject(p)) continue;
    if (p.type === 'image_url' && isObject(p.image_url)) {
      const d = dataUrl(p.image_url.url);
      images.push(`${d.mediaType} ${d.size} bytes`);
    } else if (p.type === 'file' && isObject(p.file)) {
      const d = dataUrl(p.file.file_data);
      files.push(`${typeof p.file.filename === 'string' ? p.file.filename : '(unnamed)'} ${d.mediaType} ${d.size} bytes`);
    }
  }
  const list = (/** @type {string[]} */ xs, /** @type {string} */ one) => `${xs.length} ${one}${xs.length === 1 ? '' : 's'}${xs.length ? `: ${xs.join(', ')}` : ''}`;
  return `Saw ${list(images, 'image')}; ${list(files, 'file')}.`;
}

/**
 * @param {string} text
 * @returns {string[]}  word-sized pieces that concatenate back to the text (trailing whitespace dropped)
 */
export const splitDeltas = (text) => text.match(/\s*\S+/g) ?? [];

/**
 * @param {unknown} v
 * @returns {v is Record<string, unknown>}
 */
export const isObject = (v) => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * @typedef {ReturnType<typeof plan>} Plan
 */

/**
 * @param {unknown} body  the parsed request body
 * @param {import('./mock-llm-knobs.mjs').MockConfig} global
 */
export function plan(body, global) {
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
  /** @type {import('./mock-llm-knobs.mjs').MockConfig} */
  let cfg = { ...global, ...local };
  // A chat's title request (durable-objects/room/titles.ts, known by its instructions) takes only the title knobs: the
  // turn's own (a gate, an error, tools) held or failed the turn, not its title.
  const system = messages.find((m) => isObject(m) && m.role === 'system');
  if (system && contentText(/** @type {Record<string, unknown>} */ (system).content).startsWith(TITLE_INSTRUCTIONS)) {
    cfg = {
      reply: cfg.title_reply ?? 'Mock title',
      ...(cfg.title_error_status !== undefined ? { error_status: cfg.title_error_status } : {}),
    };
  }
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
  const described = cfg.describe_files && last ? describeFiles(last.content) : null;
  let reply = toolCalls
    ? (cfg.tool_text ?? '')
    : (cfg.reply ?? described ?? (step > 0 ? toolResultsReply(messages, lastUser) : null) ?? `Echo: ${text}`.trim());
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
export function errorKind(status) {
  if (status === 401) return { type: 'invalid_request_error', code: 'invalid_api_key' };
  if (status === 403) return { type: 'permission_error', code: 'permission_denied' };
  if (status === 404) return { type: 'invalid_request_error', code: 'model_not_found' };
  if (status === 429) return { type: 'requests', code: 'rate_limit_exceeded' };
  if (status >= 500) return { type: 'server_error', code: 'server_error' };
  return { type: 'invalid_request_error', code: 'invalid_request' };
}
