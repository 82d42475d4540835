/**
 * What the model sees for a turn, and when to compact it: when the context reaches `compression_threshold`
 * percent of the model's `context_limit` (100 disables), history before the newest user message is summarised
 * and the summary replaces it. Token counts are estimated (4 characters a token) or, when larger, taken from
 * the provider's own count for the previous turn.
 */
import type { ModelMessage } from 'ai';
import { textOf, ToolCallPart, ToolResultPart, type Message } from '../../functions/core/chats';
import { pairToolResults, resultText } from './tools';
import { BINARY_PART_TOKENS, fileNote, fileParts, userParts, type FileBytes } from './file-input';

export interface Summary {
  throughId: number;
  content: string;
}

export interface Prompt {
  system: string | undefined;
  messages: ModelMessage[];
}

export const SUMMARY_INSTRUCTIONS =
  'You compress chat transcripts. Write a compact summary of the conversation you are given that keeps every fact, decision, ' +
  'open question, name, number and stated preference needed to continue it. Reply with the summary only.';
export const SUMMARY_REQUEST = 'Summarize the conversation so far.';
export const SUMMARY_PREFIX = 'Summary of the earlier conversation:\n';

const chars = (s: string) => s.length;
export const estimateTokens = (text: string): number => Math.ceil(chars(text) / 4);

const toolCalls = (m: Message) => m.content.flatMap((p) => { const c = ToolCallPart.safeParse(p); return c.success ? [c.data] : []; });
const toolResults = (m: Message) => m.content.flatMap((p) => { const r = ToolResultPart.safeParse(p); return r.success ? [r.data] : []; });

function toModelMessage(m: Message, files: FileBytes): ModelMessage | null {
  const text = textOf(m.content);
  if (m.role === 'user') return fileParts(m).length > 0 ? { role: 'user', content: userParts(m, files) } : { role: 'user', content: text };
  if (m.role === 'assistant') {
    const calls = toolCalls(m);
    if (calls.length === 0) return { role: 'assistant', content: text };
    return {
      role: 'assistant',
      content: [
        ...(text ? [{ type: 'text' as const, text }] : []),
        ...calls.map((c) => ({ type: 'tool-call' as const, toolCallId: c.tool_call_id, toolName: c.name, input: c.args })),
      ],
    };
  }
  if (m.role === 'tool') {
    const results = toolResults(m);
    if (results.length === 0) return null;
    return {
      role: 'tool',
      content: results.map((r) => ({
        type: 'tool-result' as const,
        toolCallId: r.tool_call_id,
        toolName: r.name,
        output: { type: r.is_error ? ('error-text' as const) : ('text' as const), value: resultText(r.result) },
      })),
    };
  }
  return null;
}

/** A message as plain text, tool calls and results included (for summaries and estimates). */
function plainText(m: Message, maxResultChars = Infinity): string {
  const calls = toolCalls(m).map((c) => `[tool call ${c.name} ${JSON.stringify(c.args)}]`);
  const results = toolResults(m).map((r) => {
    const t = resultText(r.result);
    return `[tool result ${r.name}${r.is_error ? ' (error)' : ''}: ${t.length > maxResultChars ? `${t.slice(0, maxResultChars)}…` : t}]`;
  });
  return [textOf(m.content), ...fileParts(m).map(fileNote), ...calls, ...results].filter(Boolean).join('\n');
}

/** A message for a summary request: tool calls and results as text (that request offers no tools). */
function toSummaryMessage(m: Message): ModelMessage | null {
  // A dropped file leaves its note ("[image: a.png]") in what the summary is made from.
  if (m.role === 'user') return { role: 'user', content: plainText(m) };
  if (m.role === 'assistant' || m.role === 'tool') return { role: 'assistant', content: plainText(m, SUMMARY_RESULT_CHARS) };
  return null;
}
const SUMMARY_RESULT_CHARS = 2000;

/** The prompt for a turn: system messages joined, then the summary (if any), then messages after it. */
export function buildPrompt(history: readonly Message[], summary: Summary | null, files: FileBytes = new Map()): Prompt {
  const system = history
    .filter((m) => m.role === 'system')
    .map((m) => textOf(m.content))
    .filter(Boolean);
  if (summary) system.push(SUMMARY_PREFIX + summary.content);
  const messages = history
    .filter((m) => !summary || m.id > summary.throughId)
    .map((m) => toModelMessage(m, files))
    .filter((m): m is ModelMessage => m !== null);
  return { system: system.length ? system.join('\n\n') : undefined, messages: pairToolResults(messages) };
}

/** Estimated tokens of a prompt, or the provider's count for the last turn plus what came after it. */
export function contextTokens(prompt: Prompt, history: readonly Message[], summary: Summary | null): number {
  // Tool calls and results count, as their JSON; a file sent as bytes counts a fixed amount.
  let binary = 0;
  const bytesAsNote = (_k: string, v: unknown) => {
    if (!(v instanceof Uint8Array)) return v;
    binary += 1;
    return '';
  };
  const text =
    (prompt.system ?? '') +
    prompt.messages.map((m) => (typeof m.content === 'string' ? m.content : JSON.stringify(m.content, bytesAsNote))).join('');
  const estimated = estimateTokens(text) + binary * BINARY_PART_TOKENS;
  const live = history.filter((m) => !summary || m.id > summary.throughId);
  const lastAssistant = live.map((m, i) => ({ m, i })).filter(({ m }) => m.role === 'assistant' && m.usage).at(-1);
  if (!lastAssistant?.m.usage) return estimated;
  const after = live.slice(lastAssistant.i + 1).map((m) => plainText(m)).join('');
  return Math.max(estimated, lastAssistant.m.usage.total_tokens + estimateTokens(after));
}

export function shouldCompact(tokens: number, contextLimit: number, thresholdPercent: number): boolean {
  return thresholdPercent < 100 && tokens >= (contextLimit * thresholdPercent) / 100;
}

/**
 * The messages to fold into a new summary: everything after the current summary up to (not including) the
 * newest user message. Null when there is too little to be worth it.
 */
export function compactionPlan(history: readonly Message[], summary: Summary | null): { through: number; fold: Message[] } | null {
  const live = history.filter((m) => m.role !== 'system' && (!summary || m.id > summary.throughId));
  let lastUser = -1;
  live.forEach((m, i) => {
    if (m.role === 'user') lastUser = i;
  });
  const fold = live.slice(0, lastUser);
  const through = fold.at(-1)?.id;
  if (through === undefined || fold.length < 2) return null;
  return { through, fold };
}

/** The request that asks the model for a summary (the previous summary, if any, is carried in). */
export function summaryRequest(fold: readonly Message[], summary: Summary | null): Prompt {
  const messages = fold.map(toSummaryMessage).filter((m): m is ModelMessage => m !== null);
  if (summary) messages.unshift({ role: 'user', content: SUMMARY_PREFIX + summary.content });
  messages.push({ role: 'user', content: SUMMARY_REQUEST });
  return { system: SUMMARY_INSTRUCTIONS, messages };
}
