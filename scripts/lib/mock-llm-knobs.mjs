// @ts-check
/**
 * The mock LLM's knobs (scripts/lib/mock-llm.mjs lists them): their kinds and checks, the `[[mock ...]]` directives
 * in a message, and the error type every part of the mock throws to answer an OpenAI-style error.
 */

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
 * @property {boolean} [describe_files]
 * @property {string} [title_reply]
 * @property {number} [title_error_status]
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
  describe_files: 'boolean',
  title_reply: 'string',
  title_error_status: 'status',
});

export const MAX_MS = 10 * 60 * 1000;
const MAX_CHUNKS = 10_000_000;
export const DIRECTIVE = /\[\[mock((?:\s+[A-Za-z_]+(?:=(?:"(?:[^"\\]|\\.)*"|[^\s"\]]+))?)*)\s*\]\]/g;
const DIRECTIVE_IN_TEXT = new RegExp(`[ \\t]*${DIRECTIVE.source}[ \\t]*`, 'g');
const DIRECTIVE_ARG = /([A-Za-z_]+)(?:=("(?:[^"\\]|\\.)*"|[^\s"\]]+))?/g;

export class MockError extends Error {
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
 * The global knobs after POST /__mock/config: each knob of the body checked and merged in, `null` removing one.
 * @param {MockConfig} current
 * @param {Record<string, unknown>} body
 * @returns {MockConfig}
 */
export function mergeKnobs(current, body) {
  /** @type {MockConfig} */
  let next = { ...current };
  /** @type {Set<string>} */
  const removed = new Set();
  for (const [k, v] of Object.entries(body)) {
    if (v === null) removed.add(knobName(k));
    else next = { ...next, ...checkKnob(k, v) };
  }
  return Object.fromEntries(Object.entries(next).filter(([k]) => !removed.has(k)));
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
