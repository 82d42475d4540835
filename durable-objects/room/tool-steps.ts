/**
 * A turn's tool steps as its history shows them: how many model calls asked for tools since the user's message (the
 * step count survives the object's eviction with the history), and the model's tool calls as stored parts.
 */
import type { ModelToolCall } from '../llm/model';
import { ToolArgs, ToolCallPart, type Message } from '../../functions/core/chats';

/** Model calls of the current turn that asked for tools: assistant messages with tool calls after the last user message. */
export function stepsSince(history: readonly Message[]): number {
  let n = 0;
  for (let i = history.length - 1; i >= 0; i--) {
    const m = history[i];
    if (!m || m.role === 'user') break;
    if (m.role === 'assistant' && m.content.some((p) => p.type === 'tool_call')) n += 1;
  }
  return n;
}

/** The final note of a turn that reached its model config's `max_steps`. */
export const maxStepsNote = (max: number): string =>
  `Stopped after ${max} model calls with tools (this model's max_steps) before a final answer. Send a message to continue.`;

/** The ids of the current turn's tool calls so far (after the last user message). */
function idsSince(history: readonly Message[]): Set<string> {
  const ids = new Set<string>();
  for (let i = history.length - 1; i >= 0; i--) {
    const m = history[i];
    if (!m || m.role === 'user') break;
    for (const p of m.content) {
      const c = ToolCallPart.safeParse(p);
      if (c.success) ids.add(c.data.tool_call_id);
    }
  }
  return ids;
}

/**
 * The model's calls as parts. Arguments that are not a JSON object become `{}` and are named in `invalid` (the call is
 * answered with an error, never run). An id the turn already used (some providers number calls per response) gets a
 * suffix, so every call of a turn has its own id, its own result and its own idempotency key.
 */
export function toolCallParts(calls: readonly ModelToolCall[], history: readonly Message[]): { calls: ToolCallPart[]; invalid: Map<string, string> } {
  const used = idsSince(history);
  const invalid = new Map<string, string>();
  const out = calls.map((c, i): ToolCallPart => {
    let id = c.toolCallId || `call_${i}`;
    for (let n = 2; used.has(id); n++) id = `${c.toolCallId || `call_${i}`}_${n}`;
    used.add(id);
    let args: unknown;
    try {
      args = c.input.trim() === '' ? {} : JSON.parse(c.input);
    } catch {
      args = undefined;
    }
    const parsed = ToolArgs.safeParse(args);
    if (!parsed.success) invalid.set(id, `The arguments of ${c.toolName} are not a JSON object; the tool did not run.`);
    return { type: 'tool_call', tool_call_id: id, name: c.toolName, args: parsed.success ? parsed.data : {} };
  });
  return { calls: out, invalid };
}
