/** Chats and messages: input schemas and row parsing (derived from the API shapes), shared by the Worker and the objects. */
import { z } from 'zod';
import { Chat, Int8, Message, QueuedMessage, TextPart, Timestamp, TokenUsage, type Part } from './shapes/chat';
import { mapShape } from './shapes/map-shape';
import { FileInputPart, MAX_FILES_PER_MESSAGE } from './shapes/files';
import { formatMicros } from './usage-cost';

export const MAX_MESSAGE_CHARS = 200_000;
export const MAX_MESSAGE_PARTS = 100;
export const MAX_QUEUED = 20;

export {
  Chat,
  ChatAccess,
  ChatStatus,
  LastError,
  Message,
  MessagePart,
  Part,
  PendingToolCall,
  QueuedMessage,
  Role,
  TextPart,
  TokenUsage,
  ToolArgs,
  ToolCallPart,
  ToolResultPart,
  Usage,
} from './shapes/chat';

/** User input: a string (one text part) or a list of text and file parts; never empty, bounded. */
export const UserContent = z
  .union([
    z.string(),
    z
      .array(z.discriminatedUnion('type', [TextPart, FileInputPart]))
      .min(1, { message: 'must contain at least one part' })
      .max(MAX_MESSAGE_PARTS, { message: `must have at most ${MAX_MESSAGE_PARTS} parts` }),
  ])
  .transform((c): UserInputPart[] => (typeof c === 'string' ? [{ type: 'text', text: c }] : c))
  .refine((parts) => parts.some((p) => p.type === 'file' || p.text.trim().length > 0), { message: 'must not be empty' })
  .refine((parts) => parts.filter((p) => p.type === 'file').length <= MAX_FILES_PER_MESSAGE, {
    message: `must attach at most ${MAX_FILES_PER_MESSAGE} files`,
  })
  .refine((parts) => parts.reduce((n, p) => n + (p.type === 'text' ? p.text.length : 0), 0) <= MAX_MESSAGE_CHARS, {
    message: `must be at most ${MAX_MESSAGE_CHARS} characters`,
  });
export type UserInputPart = z.infer<typeof TextPart> | FileInputPart;

export const Labels = z
  .record(z.string().min(1).max(64), z.string().max(256))
  .refine((l) => Object.keys(l).length <= 50, { message: 'at most 50 labels' });

// Rows, parsed by schemas derived from the API shapes: only what Postgres spells differently is restated.
const MessageRow = Message.omit({ usage: true }).extend({ id: Int8, created_at: Timestamp });
/** The usage columns of a message row: null for a message without usage (not a model's answer). */
const UsageRow = z.object(mapShape(TokenUsage.shape, () => Int8.nullable()));
/** An answer's cost in micro-units, kept exact (it may pass 2^53): null when not priced. */
const CostRow = z.object({ cost_micros: z.union([z.string().regex(/^-?\d+$/), z.number().int()]).nullish() });

/** A message row without its content: a message just inserted, whose content the writer already holds. */
const BareMessageRow = MessageRow.omit({ content: true });

export function toMessage(row: unknown): Message {
  return withUsage(MessageRow.parse(row), row);
}

/**
 * A message InsertChatMessages just stored: its row (which carries no content) and the content that was written,
 * already a `Part[]` the writer validated. The row's columns are parsed as any row's; the content is not parsed again.
 */
export function toInsertedMessage(row: unknown, content: Part[]): Message {
  return withUsage({ ...BareMessageRow.parse(row), content }, row);
}

function withUsage(message: Omit<Message, 'usage'>, row: unknown): Message {
  const u = UsageRow.parse(row);
  if (u.input_tokens === null && u.output_tokens === null && u.total_tokens === null) return message;
  const { cost_micros: cost } = CostRow.parse(row);
  return { ...message, usage: { ...mapShape(u, (v) => v ?? 0), cost: cost == null ? null : formatMicros(BigInt(cost)) } };
}

const ChatRow = Chat.extend({
  // A row is the chat as its owner sees it; a shared chat's query says `viewer`.
  access: Chat.shape.access.default('owner'),
  labels: Chat.shape.labels.catch({}),
  last_error: Chat.shape.last_error.catch(null),
  created_at: Timestamp,
  updated_at: Timestamp,
});

/** The fork columns of a chats row (migration 000016), as `chat.forked_from`. */
const ForkRow = z.object({ forked_from_chat_id: z.uuid().nullish(), forked_from_message_id: Int8.nullish() });

export function toChat(row: unknown): Chat {
  const fork = ForkRow.parse(row);
  const forked_from =
    fork.forked_from_chat_id != null && fork.forked_from_message_id != null
      ? { chat_id: fork.forked_from_chat_id, message_id: fork.forked_from_message_id }
      : null;
  return ChatRow.parse({ ...z.record(z.string(), z.unknown()).parse(row), forked_from });
}

/** Where a chat's title came from (migration 000016): the model replaces only a title taken from the first words. */
export const TitleSource = z.enum(['first_words', 'owner', 'model']);
export type TitleSource = z.infer<typeof TitleSource>;

/** A chats row's title source (an unknown value counts as the owner's: never replaced). */
export function titleSourceOf(row: unknown): TitleSource {
  const r = z.object({ title_source: TitleSource.catch('owner') }).catch({ title_source: 'owner' }).parse(row);
  return r.title_source;
}

const QueuedRow = QueuedMessage.extend({ created_at: Timestamp });

export function toQueued(row: unknown): QueuedMessage {
  return QueuedRow.parse(row);
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
