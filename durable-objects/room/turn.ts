/**
 * A turn: one model call of a chat, from its start to the write that ends it. The write is described by a
 * `FinishEntry`, which is also what the outbox keeps when Postgres cannot take it.
 */
import { z } from 'zod';
import type { ModelError, ModelResult } from '../../functions/llm/model';
import type { ResolvedModel } from '../../functions/services/chat-models';
import { LastError, Part, TokenUsage } from '../../functions/services/chats';
import { answerCost } from '../../functions/services/usage-cost';

/** How a model call ended; it never rejects (a failure is a value). */
export interface CallOutcome {
  result: ModelResult | null;
  failure: ModelError | null;
}

export interface Turn {
  /** Random; its assistant message carries `turn:<id>` as idempotency key, so a retried write is applied once. */
  id: string;
  resolved: ResolvedModel;
  abort: AbortController;
  /** The parts streamed so far, replayed from seq 0 to a socket that connects mid-turn. */
  parts: { part: Part; seq: number }[];
  /** Settles when the model call is over (after an abort too): only then may another call start. */
  call: Promise<CallOutcome>;
}

/** The write that ends a turn: its assistant message (none when it produced nothing) and the chat's status. */
export const FinishEntry = z.object({
  turnId: z.string().min(1),
  modelConfigId: z.string(),
  content: z.array(Part),
  usage: TokenUsage.nullable(),
  /**
   * The answer's cost in micro-units (a decimal integer string), fixed when the turn ended with the prices it ran on;
   * null when not priced. Absent in entries kept by an older version: null.
   */
  cost: z.string().regex(/^\d{1,19}$/).nullable().default(null),
  status: z.enum(['waiting', 'error']),
  lastError: LastError.nullable(),
  /** The final text, for the owner's notification. */
  finalText: z.string(),
});
export type FinishEntry = z.infer<typeof FinishEntry>;

export const idempotencyKeyOfTurn = (turnId: string): string => `turn:${turnId}`;

/** What a turn writes when its call is over: the text and reasoning it produced, with the usage of a full answer. */
export function finishEntryOf(turn: Turn, outcome: CallOutcome): FinishEntry {
  const { result, failure } = outcome;
  const text = result?.text ?? failure?.partial.text ?? '';
  const reasoning = result?.reasoning ?? failure?.partial.reasoning ?? '';
  const aborted = result?.finishReason === 'aborted';
  const content: Part[] = [];
  if (reasoning) content.push({ type: 'reasoning', text: reasoning });
  // A finished answer is kept even when empty; a stopped or failed one only when it produced something.
  if (text || (result && !aborted && !reasoning)) content.push({ type: 'text', text });
  const usage = result && !aborted ? result.usage : null;
  return {
    turnId: turn.id,
    modelConfigId: turn.resolved.config.id,
    content,
    usage,
    cost: answerCost(turn.resolved.config.pricing, usage, result?.usageKnown === true),
    status: failure ? 'error' : 'waiting',
    lastError: failure ? { message: failure.message, kind: failure.kind } : null,
    finalText: text,
  };
}

/** The parts a finished turn's entry stands for, replayed to sockets while its write waits for Postgres. */
export function partsOf(entry: FinishEntry): { part: Part; seq: number }[] {
  return entry.content.map((part, seq) => ({ part, seq }));
}
