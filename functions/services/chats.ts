/** Chats and messages: their API shapes, input schemas, and the Worker-side reads. */
import { z } from 'zod';
import type { Queryable } from '../lib/db';
import {
  getChatMessagesAfter,
  getChatMessagesBefore,
} from '../../sql/generated/chat_messages.queries';
import { getChatsByOwner } from '../../sql/generated/chats.queries';
import { formatMicros } from './usage-cost';

export const MAX_MESSAGE_CHARS = 200_000;
export const MAX_MESSAGE_PARTS = 100;
export const MAX_QUEUED = 20;

export const TextPart = z.object({ type: z.literal('text'), text: z.string() }).strict();
export const ReasoningPart = z.object({ type: z.literal('reasoning'), text: z.string() }).strict();
export const Part = z.discriminatedUnion('type', [TextPart, ReasoningPart]);
export type Part = z.infer<typeof Part>;

/** User input: a string (one text part) or a list of text parts; never empty, bounded. */
export const UserContent = z
  .union([
    z.string(),
    z
      .array(TextPart)
      .min(1, { message: 'must contain at least one part' })
      .max(MAX_MESSAGE_PARTS, { message: `must have at most ${MAX_MESSAGE_PARTS} parts` }),
  ])
  .transform((c): Part[] => (typeof c === 'string' ? [{ type: 'text', text: c }] : c))
  .refine((parts) => parts.some((p) => p.text.trim().length > 0), { message: 'must not be empty' })
  .refine((parts) => parts.reduce((n, p) => n + p.text.length, 0) <= MAX_MESSAGE_CHARS, {
    message: `must be at most ${MAX_MESSAGE_CHARS} characters`,
  });

/** Content read back from Postgres: known parts are checked, unknown kinds (future tool parts) kept as-is. */
const StoredContent = z.array(z.union([Part, z.looseObject({ type: z.string() })]));

export const Labels = z
  .record(z.string().min(1).max(64), z.string().max(256))
  .refine((l) => Object.keys(l).length <= 50, { message: 'at most 50 labels' });

export const ChatStatus = z.enum(['waiting', 'running', 'interrupting', 'error']);
export type ChatStatus = z.infer<typeof ChatStatus>;
export const LastError = z.object({ message: z.string(), kind: z.string() });
export type LastError = z.infer<typeof LastError>;

export const Role = z.enum(['system', 'user', 'assistant', 'tool']);
export type Role = z.infer<typeof Role>;

export interface Usage {
  input_tokens: number;
  output_tokens: number;
  total_tokens: number;
  reasoning_tokens: number;
  cache_read_tokens: number;
  cache_creation_tokens: number;
}

/** A message's usage: its tokens and, for an answer on a priced model, its cost (a decimal string). */
export interface MessageUsage extends Usage {
  cost: string | null;
}

export interface Message {
  id: number;
  chat_id: string;
  role: Role;
  content: z.infer<typeof StoredContent>;
  model_config_id: string | null;
  created_at: string;
  usage?: MessageUsage;
}

const Int8 = z.union([z.string(), z.number()]).transform(Number).nullable();
const MessageRow = z.object({
  id: z.union([z.string(), z.number()]).transform(Number),
  chat_id: z.string(),
  role: Role,
  content: StoredContent,
  model_config_id: z.string().nullable(),
  created_at: z.coerce.date(),
  input_tokens: Int8,
  output_tokens: Int8,
  total_tokens: Int8,
  reasoning_tokens: Int8,
  cache_read_tokens: Int8,
  cache_creation_tokens: Int8,
  // Kept exact: micro-units may pass 2^53.
  cost_micros: z.union([z.string().regex(/^-?\d+$/), z.number().int()]).nullish(),
});

export function toMessage(row: unknown): Message {
  const r = MessageRow.parse(row);
  const m: Message = {
    id: r.id,
    chat_id: r.chat_id,
    role: r.role,
    content: r.content,
    model_config_id: r.model_config_id,
    created_at: r.created_at.toISOString(),
  };
  if (r.input_tokens !== null || r.output_tokens !== null || r.total_tokens !== null) {
    m.usage = {
      input_tokens: r.input_tokens ?? 0,
      output_tokens: r.output_tokens ?? 0,
      total_tokens: r.total_tokens ?? 0,
      reasoning_tokens: r.reasoning_tokens ?? 0,
      cache_read_tokens: r.cache_read_tokens ?? 0,
      cache_creation_tokens: r.cache_creation_tokens ?? 0,
      cost: r.cost_micros == null ? null : formatMicros(BigInt(r.cost_micros)),
    };
  }
  return m;
}

export interface Chat {
  id: string;
  owner_id: string;
  title: string;
  status: ChatStatus;
  last_model_config_id: string | null;
  archived: boolean;
  labels: Record<string, string>;
  agent_id: string | null;
  last_error: LastError | null;
  created_at: string;
  updated_at: string;
}

const ChatRow = z.object({
  id: z.string(),
  owner_id: z.string(),
  title: z.string(),
  status: ChatStatus,
  last_model_config_id: z.string().nullable(),
  archived: z.boolean(),
  labels: z.record(z.string(), z.string()).catch({}),
  agent_id: z.string().nullable(),
  last_error: LastError.nullable().catch(null),
  created_at: z.coerce.date(),
  updated_at: z.coerce.date(),
});

export function toChat(row: unknown): Chat {
  const r = ChatRow.parse(row);
  return { ...r, created_at: r.created_at.toISOString(), updated_at: r.updated_at.toISOString() };
}

export interface QueuedMessage {
  id: string;
  chat_id: string;
  content: z.infer<typeof StoredContent>;
  model_config_id: string | null;
  created_at: string;
}

const QueuedRow = z.object({
  id: z.string(),
  chat_id: z.string(),
  content: StoredContent,
  model_config_id: z.string().nullable(),
  created_at: z.coerce.date(),
});

export function toQueued(row: unknown): QueuedMessage {
  const r = QueuedRow.parse(row);
  return { ...r, created_at: r.created_at.toISOString() };
}

/** A short title from the first user message: its first line, at most 80 characters. */
export function titleFrom(parts: Part[]): string {
  const text = parts.map((p) => (p.type === 'text' ? p.text : '')).join(' ').trim();
  const line = (text.split('\n').find((l) => l.trim()) ?? '').trim().replace(/\s+/g, ' ');
  return line.length > 80 ? `${line.slice(0, 79).trimEnd()}…` : line;
}

/** The plain text of a message's parts (text parts only). */
export function textOf(content: readonly { type: string }[]): string {
  return content
    .map((p) => (p.type === 'text' && 'text' in p && typeof p.text === 'string' ? p.text : ''))
    .join('');
}

export async function listChats(db: Queryable, ownerId: string, archived: boolean, limit: number, offset: number): Promise<Chat[]> {
  return (await getChatsByOwner.run({ owner_id: ownerId, archived, limit, offset }, db)).map(toChat);
}

const MAX_ID = '9223372036854775807';

/** One page of live messages, ascending by id. With only `before_id`, the newest page before it. */
export async function listMessages(
  db: Queryable,
  chatId: string,
  q: { after_id?: number | undefined; before_id?: number | undefined; limit: number },
): Promise<Message[]> {
  const after = String(q.after_id ?? 0);
  const before = q.before_id !== undefined ? String(q.before_id) : MAX_ID;
  if (q.before_id !== undefined && q.after_id === undefined) {
    const rows = await getChatMessagesBefore.run({ chat_id: chatId, after_id: after, before_id: before, limit: q.limit }, db);
    return rows.map(toMessage).reverse();
  }
  return (await getChatMessagesAfter.run({ chat_id: chatId, after_id: after, before_id: before, limit: q.limit }, db)).map(toMessage);
}
