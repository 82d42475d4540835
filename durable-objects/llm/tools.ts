/**
 * Tool calls and results as the model sees them, and as they are stored: a result is
 * `{content: [{type: "text", text}, ...], structuredContent?, truncated?}` (MCP's shape, capped in size), the model
 * gets its text, and every tool call in a prompt is followed by its result (a call whose turn ended before it ran
 * gets a stand-in error result, so providers never see a call without an answer).
 */
import type { ModelMessage } from 'ai';
import { z } from 'zod';
import type { CallResult } from '../room/mcp-client';

/** What a tool message's `result` holds. */
export const ToolResultValue = z.object({
  content: z.array(z.looseObject({ type: z.string() })),
  structuredContent: z.record(z.string(), z.unknown()).optional(),
  truncated: z.literal(true).optional(),
});
export type ToolResultValue = z.infer<typeof ToolResultValue>;

/** A result that says what went wrong, in words the model can act on. */
export function errorResult(message: string): ToolResultValue {
  return { content: [{ type: 'text', text: message }] };
}

const EmbeddedResource = z.object({ text: z.string().optional(), uri: z.string().optional() });

/** The text of a content item (text as is; other kinds named, resources by their text or URI). */
function itemText(item: { type: string } & Record<string, unknown>): string {
  if (item.type === 'text' && typeof item.text === 'string') return item.text;
  if (item.type === 'resource') {
    const r = EmbeddedResource.safeParse(item.resource);
    if (r.success && r.data.text !== undefined) return r.data.text;
    if (r.success && r.data.uri !== undefined) return `[resource ${r.data.uri}]`;
  }
  if (item.type === 'resource_link' && typeof item.uri === 'string') return `[resource ${item.uri}]`;
  return `[${item.type}]`;
}

/** The text the model reads for a result: its content's text, else its structured content as JSON. */
export function resultText(value: unknown): string {
  const parsed = ToolResultValue.safeParse(value);
  if (!parsed.success) return value === undefined ? '' : JSON.stringify(value);
  const text = parsed.data.content.map(itemText).join('\n');
  if (text.trim() !== '' || parsed.data.structuredContent === undefined) return text;
  return JSON.stringify(parsed.data.structuredContent);
}

/**
 * A server's answer as stored: at most `maxChars` characters of JSON. A longer one keeps only its text, cut to fit,
 * and says so (`truncated`), so neither the history nor the model's context is flooded by one call.
 */
export function capResult(r: CallResult, maxChars: number): ToolResultValue {
  const value: ToolResultValue = { content: r.content };
  if (r.structuredContent !== undefined) value.structuredContent = r.structuredContent;
  const size = JSON.stringify(value).length;
  if (size <= maxChars) return value;
  const text = r.content.map(itemText).join('\n') || JSON.stringify(r.structuredContent ?? null);
  const note = `\n[truncated: the result had ${size} characters]`;
  const cut = (n: number): ToolResultValue => ({ content: [{ type: 'text', text: text.slice(0, n) + note }], truncated: true });
  // JSON escapes can make the text longer than its characters (quotes, newlines, control characters): cut further
  // until the stored value fits.
  let n = Math.max(0, maxChars - note.length - 64);
  let capped = cut(n);
  for (let len = JSON.stringify(capped).length; len > maxChars && n > 0; len = JSON.stringify(capped).length) {
    n = Math.max(0, Math.min(n - 1, Math.floor((n * maxChars) / len) - 64));
    capped = cut(n);
  }
  return capped;
}

/** The namespaced name a model sees: `<server>__<tool>`, in the characters and length providers accept. */
export function toolName(server: string, tool: string): string {
  return `${server}__${tool.replace(/[^A-Za-z0-9_-]/g, '_')}`.slice(0, 64);
}

const NO_RESULT = 'No result: the turn ended before this tool call ran.';

/**
 * Pairs tool calls with their results, as providers require: each assistant message with tool calls is followed by
 * one tool message holding a result for every call, in call order (results found later on, stand-ins for missing
 * ones); results whose call is not in the prompt (folded into a summary) are dropped.
 */
export function pairToolResults(messages: ModelMessage[]): ModelMessage[] {
  const out: ModelMessage[] = [];
  for (let i = 0; i < messages.length; i++) {
    const m = messages[i];
    if (!m) continue;
    if (m.role === 'tool') continue;
    out.push(m);
    if (m.role !== 'assistant' || typeof m.content === 'string') continue;
    const calls = m.content.flatMap((p) => (p.type === 'tool-call' ? [p] : []));
    if (calls.length === 0) continue;
    const results = new Map<string, Extract<(ModelMessage & { role: 'tool' })['content'][number], { type: 'tool-result' }>>();
    for (let j = i + 1; j < messages.length; j++) {
      const next = messages[j];
      if (next?.role !== 'tool') break;
      for (const p of next.content) if (p.type === 'tool-result') results.set(p.toolCallId, p);
    }
    out.push({
      role: 'tool',
      content: calls.map(
        (c) => results.get(c.toolCallId) ?? { type: 'tool-result', toolCallId: c.toolCallId, toolName: c.toolName, output: { type: 'error-text', value: NO_RESULT } },
      ),
    });
  }
  return out;
}
