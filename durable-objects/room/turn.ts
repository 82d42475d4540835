/**
 * A turn: the model calls of a chat that answer one user message, from its start to the write that ends it. A turn
 * with tools is a loop of steps (a model call, then the tools it asked for); each step ends with one durable write.
 * Writes are described by a `FinishEntry`, which is also what the outbox keeps when Postgres cannot take it.
 */
import { z } from 'zod';
import type { ModelError, ModelResult } from '../llm/model';
import { errorResult } from '../llm/tools';
import type { ResolvedModel } from '../../functions/core/model-resolve';
import { LastError, Part, PendingToolCall, TokenUsage, ToolResultPart, type Chat, type Message, type ToolCallPart } from '../../functions/core/chats';
import { answerCost } from '../../functions/core/usage-cost';
import type { Pricing } from '../../functions/core/shapes/usage';
import { DebugRunEntry, TurnRecord } from './turn-record';

/** The tools of one step: the calls the model made, the results so far, and the calls waiting for approval. */
export interface StepTools {
  /** The step's number in the turn (0 for the first model call): its assistant message's key is `turn:<id>:step:<n>`. */
  step: number;
  calls: ToolCallPart[];
  results: ToolResultPart[];
  pending: PendingToolCall[];
}

/** How a call of the turn ended (a model call and its tools, or approved tool calls); it never rejects. */
export interface CallOutcome {
  result: ModelResult | null;
  failure: ModelError | null;
  /** The step's tools, when the model asked for some (or approved calls ran). */
  tools?: StepTools;
  /** The turn reached its model config's `max_steps`: no model call was made, and the turn ends with this note. */
  note?: string;
  /** The model call's record (none when no model call was made), and its debug run when the setting wants one. */
  record?: TurnRecord;
  debug?: DebugRunEntry | null;
}

/** A streamed part of the running step, replayed from seq 0 to a socket that connects mid-step. */
export interface TurnPart {
  part: Part;
  seq: number;
  role: 'assistant' | 'tool';
}

export interface Turn {
  /** Random; its messages carry `turn:<id>...` idempotency keys, so a retried write is applied once. */
  id: string;
  resolved: ResolvedModel;
  abort: AbortController;
  /** The parts of the step in progress (a step's parts become durable messages when it is written). */
  parts: TurnPart[];
  /** Settles when the current call is over (after an abort too): only then may another call start. */
  call: Promise<CallOutcome>;
  /** Approved tool calls that wait for the one running now (approvals given while it ran), run one after the other. */
  approved: PendingToolCall[];
  /**
   * The chat's live history as the turn's calls see it: read once when its first call starts, then extended by each
   * of its writes (a tool step never re-reads it).
   */
  history: Message[] | null;
  /** Whether the chat has an agent (then its pinned context is read for the prompt). */
  hasAgent: boolean;
  /** The bytes of the files its prompt sends, read from R2 by its first call and dropped with the turn. */
  files?: Map<string, Uint8Array>;
  /** The chat owner's id (the turn record's user). */
  ownerId: string;
  /**
   * Since when the next model call has been wanted (ms since the epoch): the message posted or taken from the queue
   * (queued since then), or the previous step written. A call's queue_ms runs from here to its request.
   */
  wantedAt: number;
}

/**
 * A durable write of a turn, in one statement: its assistant message (none when it produced nothing), then its tool
 * results (`tool` messages), and the chat's status. The turn's last write has `step: null` (its message is keyed
 * `turn:<id>`); a tool step's write leaves the chat `running` (the loop goes on) or `requires_action` (`pending`).
 * The fields added with tools have defaults, so entries written before them still parse.
 */
export const FinishEntry = z.object({
  turnId: z.string().min(1),
  /** Null: the chat's model config stays as it is (a write with no model call of its own). */
  modelConfigId: z.string().nullable(),
  content: z.array(Part),
  usage: TokenUsage.nullable(),
  /**
   * The message's cost in micro-units (a decimal integer string), fixed when its model call ended with the prices it
   * ran on; null when not priced. Absent in entries kept by an older version: null.
   */
  cost: z.string().regex(/^\d{1,19}$/).nullable().default(null),
  status: z.enum(['waiting', 'error', 'running', 'requires_action']),
  lastError: LastError.nullable(),
  /** The final text, for the owner's notification. */
  finalText: z.string(),
  step: z.number().int().nonnegative().nullable().default(null),
  results: z.array(ToolResultPart).default([]),
  pending: z.array(PendingToolCall).default([]),
  /** The model call's record and debug run, stored by the same statement (absent in older entries: none). */
  record: TurnRecord.nullable().default(null),
  debug: DebugRunEntry.nullable().default(null),
});
export type FinishEntry = z.infer<typeof FinishEntry>;

export const idempotencyKeyOfTurn = (turnId: string): string => `turn:${turnId}`;
export const idempotencyKeyOfStep = (turnId: string, step: number): string => `turn:${turnId}:step:${step}`;
export const idempotencyKeyOfResult = (turnId: string, toolCallId: string): string => `turn:${turnId}:tool:${toolCallId}`;

const INTERRUPTED_CALL = 'The tool call was stopped before it finished (the turn was interrupted).';
const UNDECIDED_CALL = 'The turn was stopped before this tool call was approved or denied.';

const errorPart = (c: { tool_call_id: string; name: string }, message: string): ToolResultPart => ({
  type: 'tool_result',
  tool_call_id: c.tool_call_id,
  name: c.name,
  result: errorResult(message),
  is_error: true,
});

/** The assistant content of a model call: reasoning, text, then its tool calls. */
function assistantContent(result: ModelResult | null, failure: ModelError | null, calls: readonly ToolCallPart[]): { content: Part[]; text: string } {
  const text = result?.text ?? failure?.partial.text ?? '';
  const reasoning = result?.reasoning ?? failure?.partial.reasoning ?? '';
  const aborted = result?.finishReason === 'aborted';
  const content: Part[] = [];
  if (reasoning) content.push({ type: 'reasoning', text: reasoning });
  // A finished answer is kept even when empty; a stopped or failed one only when it produced something.
  if (text || (result && !aborted && !reasoning && calls.length === 0)) content.push({ type: 'text', text });
  content.push(...calls);
  return { content, text };
}

/**
 * The write that ends a turn: what its last call produced (text, reasoning, tool calls and the results it had), with
 * error results for calls that had none (stopped, or still waiting for approval: `undecided`), and the usage of a
 * full answer.
 */
export function finishEntryOf(
  turn: { id: string; modelConfigId: string | null; pricing: Pricing | null; approved: readonly PendingToolCall[] },
  outcome: CallOutcome,
  undecided: readonly PendingToolCall[] = [],
): FinishEntry {
  const { result, failure, tools } = outcome;
  const base = { turnId: turn.id, modelConfigId: turn.modelConfigId, step: null, pending: [], record: outcome.record ?? null, debug: outcome.debug ?? null };
  if (outcome.note !== undefined) {
    return { ...base, content: [{ type: 'text', text: outcome.note }], usage: null, cost: null, status: 'waiting', lastError: null, finalText: outcome.note, results: [] };
  }
  const calls = tools?.calls ?? [];
  const { content, text } = assistantContent(result, failure, calls);
  // Every call gets a result: those still waiting for a decision, and those that were running or approved, say why not.
  const waiting = new Set([...(tools?.pending ?? []), ...undecided].map((c) => c.tool_call_id));
  const results = [
    ...(tools?.results ?? []),
    ...calls.map((c) => errorPart(c, waiting.has(c.tool_call_id) ? UNDECIDED_CALL : INTERRUPTED_CALL)),
    ...turn.approved.map((c) => errorPart(c, INTERRUPTED_CALL)),
    ...undecided.map((c) => errorPart(c, UNDECIDED_CALL)),
  ];
  const usage = result && result.finishReason !== 'aborted' ? result.usage : null;
  return {
    ...base,
    content,
    usage,
    cost: answerCost(turn.pricing, usage, result?.usageKnown === true),
    status: failure ? 'error' : 'waiting',
    lastError: failure ? { message: failure.message, kind: failure.kind } : null,
    finalText: text,
    results: dedupe(results),
  };
}

/**
 * The write of a tool step whose turn goes on: the assistant message with its tool calls and the results so far;
 * `requires_action` with the calls that wait for approval (`waiting`: those already waiting, from earlier), else
 * `running`. Null when the outcome ends the turn (no tools, a failure, an interrupt, the step limit).
 */
export function stepEntryOf(turn: Turn, outcome: CallOutcome, waiting: readonly PendingToolCall[]): FinishEntry | null {
  const { result, failure, tools } = outcome;
  if (!tools || failure || outcome.note !== undefined || turn.abort.signal.aborted || result?.finishReason === 'aborted') return null;
  const pending = [...waiting, ...tools.pending];
  const { content } = result ? assistantContent(result, null, tools.calls) : { content: [] };
  const usage = result ? result.usage : null;
  return {
    turnId: turn.id,
    modelConfigId: turn.resolved.config.id,
    content,
    usage,
    // Each step's model call is priced when it ends, like a turn's last one.
    cost: answerCost(turn.resolved.config.pricing, usage, result?.usageKnown === true),
    status: pending.length > 0 ? 'requires_action' : 'running',
    lastError: null,
    finalText: '',
    step: result ? tools.step : null,
    results: tools.results,
    pending,
    record: outcome.record ?? null,
    debug: outcome.debug ?? null,
  };
}

/** The first result of each call: a call's own result wins over the stand-ins after it. */
function dedupe(results: ToolResultPart[]): ToolResultPart[] {
  const seen = new Set<string>();
  return results.filter((r) => (seen.has(r.tool_call_id) ? false : (seen.add(r.tool_call_id), true)));
}

/** The parts a write waiting in the outbox stands for, replayed to sockets while it waits for Postgres. */
export function partsOf(entry: FinishEntry): TurnPart[] {
  const parts: TurnPart[] = entry.content.map((part, seq) => ({ part, seq, role: 'assistant' }));
  for (const r of entry.results) parts.push({ part: r, seq: parts.length, role: 'tool' });
  return parts;
}

/** The tool calls waiting for the owner's decision, as a chat row holds them (none unless `requires_action`). */
export const pendingOf = (chat: Chat | null): PendingToolCall[] => (chat?.status === 'requires_action' ? chat.pending_tool_calls : []);

/** The write that ends a turn waiting for approvals with nothing running: its calls answered as stopped, the chat waiting. */
export function stoppedWaitEntry(chat: Chat | null): FinishEntry | null {
  if (chat?.status !== 'requires_action') return null;
  const stopped = { id: crypto.randomUUID(), modelConfigId: chat.last_model_config_id, pricing: null, approved: [] };
  return finishEntryOf(stopped, { result: null, failure: null }, chat.pending_tool_calls);
}
