/**
 * What the chat's statements write and hand back: the messages to insert, a model call's records, and the rows the
 * writes return paired with what was sent (room/chat-store.ts runs the statements).
 */
import { toInsertedMessage, toMessage, type Message, type Part, type Role, type TokenUsage } from '../../functions/core/chats';
import type { DebugRunEntry, TurnRecord } from './turn-record';

/** A model call's record and debug run, written by the statement that writes its answer (migration 000014). */
export interface CallRecords {
  record: TurnRecord | null;
  debug: DebugRunEntry | null;
}

export const callParams = (c: CallRecords | undefined) => ({
  turn_record: c?.record ? JSON.stringify(c.record) : null,
  debug_run: c?.debug ? JSON.stringify(c.debug) : null,
});

export interface NewMessage {
  role: Role;
  content: readonly Part[];
  createdBy: string | null;
  usage?: TokenUsage | null;
  /** Its cost in micro-units (with `usage`); null when not priced. */
  cost?: string | null;
  /** Its idempotency key: a message whose key the chat already has is not inserted again. */
  key?: string | null;
}

/** Messages just written, and the chat's new `updated_at` when the statement changed the chats row. */
export interface Written {
  messages: Message[];
  chatUpdatedAt: string | null;
}

/**
 * InsertChatMessages' rows (no content: the statement does not send back what it was given) with the content each
 * was written with: a keyed message by its key; the unkeyed ones, which are always inserted, in input order (their
 * ids follow it). Sorted by id.
 */
export function paired(rows: readonly { id: string; idempotency_key: string | null }[], ms: readonly NewMessage[]): Message[] {
  const byKey = new Map(ms.flatMap((m) => (m.key ? [[m.key, m] as const] : [])));
  const unkeyed = ms.filter((m) => !m.key);
  const out: Message[] = [];
  let next = 0;
  for (const row of [...rows].sort((a, b) => Number(a.id) - Number(b.id))) {
    const m = row.idempotency_key ? byKey.get(row.idempotency_key) : unkeyed[next++];
    if (!m) throw new Error('an inserted message matches none of those written');
    out.push(toInsertedMessage(row, [...m.content]));
  }
  return out;
}

/** The rows of a statement that returns whole messages (content included), as written. */
export function writtenRows(rows: readonly { chat_updated_at: Date | null }[]): Written {
  return {
    messages: rows.map(toMessage).sort((a, b) => a.id - b.id),
    chatUpdatedAt: rows[0]?.chat_updated_at?.toISOString() ?? null,
  };
}
