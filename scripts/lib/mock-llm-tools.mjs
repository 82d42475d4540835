// @ts-check
/**
 * The mock LLM's tool calls (scripts/lib/mock-llm.mjs lists the knobs): which tool calls a request asks for, from the
 * `tool`/`tools` knobs and the conversation so far, deterministically and without state. A turn with tools is several
 * requests that all carry the same last user message (and so the same knobs); what tells them apart is how many
 * assistant messages with `tool_calls` follow that user message: that is the step, and step N asks for the calls
 * planned for step N. Once the plan is done the model answers in text: the `reply` knob, else
 * `Tools said: <each tool message's content after the last tool step, joined by " | ">`.
 */

/**
 * @typedef {{ name: string, args: Record<string, unknown> }} PlannedCall
 * @typedef {{ id: string, name: string, arguments: string }} WireCall
 */

/**
 * @param {unknown} v
 * @returns {v is Record<string, unknown>}
 */
const isObject = (v) => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * @param {unknown} content
 * @returns {string}
 */
function contentText(content) {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return '';
  return content.map((p) => (isObject(p) && typeof p.text === 'string' ? p.text : '')).join('\n');
}

/**
 * The plan of tool steps from the knobs: `tools` (a JSON array of steps, each an array of `{name, args}`) wins over
 * `tool` + `tool_args` (one call, asked for in each of the first `tool_times` steps). Null when no tool is asked for.
 * Throws a message on a malformed plan (the mock answers 400 with it).
 * @param {{ tool?: string, tool_args?: string, tool_times?: number, tools?: string }} cfg
 * @returns {PlannedCall[][] | null}
 */
export function toolPlan(cfg) {
  if (cfg.tools !== undefined) {
    /** @type {unknown} */
    let steps;
    try {
      steps = JSON.parse(cfg.tools);
    } catch {
      throw new Error("mock: knob 'tools' wants a JSON array of steps");
    }
    if (!Array.isArray(steps)) throw new Error("mock: knob 'tools' wants a JSON array of steps");
    return steps.map((step, i) => {
      if (!Array.isArray(step)) throw new Error(`mock: tools step ${i} must be an array of {name, args}`);
      return step.map((c, j) => {
        if (!isObject(c) || typeof c.name !== 'string' || (c.args !== undefined && !isObject(c.args))) {
          throw new Error(`mock: tools step ${i} call ${j} must be {name: string, args?: object}`);
        }
        return { name: c.name, args: isObject(c.args) ? c.args : {} };
      });
    });
  }
  if (cfg.tool === undefined) return null;
  /** @type {unknown} */
  let args = {};
  if (cfg.tool_args !== undefined) {
    try {
      args = JSON.parse(cfg.tool_args);
    } catch {
      throw new Error("mock: knob 'tool_args' wants a JSON object");
    }
    if (!isObject(args)) throw new Error("mock: knob 'tool_args' wants a JSON object");
  }
  const call = { name: cfg.tool, args: /** @type {Record<string, unknown>} */ (args) };
  return Array.from({ length: cfg.tool_times ?? 1 }, () => [call]);
}

/**
 * The step a request is at: assistant messages with tool calls after the last user message.
 * @param {unknown[]} messages
 * @param {number} lastUser  index of the last user message
 */
export function toolStep(messages, lastUser) {
  let n = 0;
  for (const m of messages.slice(lastUser + 1)) {
    if (isObject(m) && m.role === 'assistant' && Array.isArray(m.tool_calls) && m.tool_calls.length > 0) n += 1;
  }
  return n;
}

/**
 * The text of the tool results after the last tool step ("Tools said: ..."), or null when there are none.
 * @param {unknown[]} messages
 * @param {number} lastUser
 * @returns {string | null}
 */
export function toolResultsReply(messages, lastUser) {
  const after = messages.slice(lastUser + 1);
  let last = -1;
  after.forEach((m, i) => {
    if (isObject(m) && m.role === 'assistant' && Array.isArray(m.tool_calls)) last = i;
  });
  if (last < 0) return null;
  const results = after.slice(last + 1).flatMap((m) => (isObject(m) && m.role === 'tool' ? [contentText(m.content)] : []));
  return `Tools said: ${results.join(' | ')}`;
}

/**
 * The calls a step asks for, with ids unique to the response (`call_<response seq>_<i>`) and JSON arguments.
 * @param {PlannedCall[]} calls
 * @param {number} seq
 * @returns {WireCall[]}
 */
export function wireCalls(calls, seq) {
  return calls.map((c, i) => ({ id: `call_${seq}_${i}`, name: c.name, arguments: JSON.stringify(c.args) }));
}

/**
 * Stream deltas for a step's calls, as OpenAI sends them: per call a first delta with its id, name and empty
 * arguments, then the arguments in two pieces.
 * @param {WireCall[]} calls
 * @returns {Record<string, unknown>[]}  `delta` objects
 */
export function toolCallDeltas(calls) {
  return calls.flatMap((c, index) => {
    const half = Math.ceil(c.arguments.length / 2);
    return [
      { tool_calls: [{ index, id: c.id, type: 'function', function: { name: c.name, arguments: '' } }] },
      { tool_calls: [{ index, function: { arguments: c.arguments.slice(0, half) } }] },
      { tool_calls: [{ index, function: { arguments: c.arguments.slice(half) } }] },
    ];
  });
}

/**
 * A non-streamed message's `tool_calls`.
 * @param {WireCall[]} calls
 */
export function messageToolCalls(calls) {
  return calls.map((c) => ({ id: c.id, type: 'function', function: { name: c.name, arguments: c.arguments } }));
}
