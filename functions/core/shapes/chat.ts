/**
 * The chat API's shapes, each written once as a zod schema: the routes answer with them, the OpenAPI document (and
 * through it the SDK's types) is generated from them, and rows read from Postgres are parsed by schemas derived from
 * them (`functions/core/chats.ts`). Change a field here and every side follows.
 */
import { z } from '@hono/zod-openapi';
import { FilePart } from './files';

export const TextPart = z.object({ type: z.literal('text'), text: z.string() }).strict().openapi('TextPart');
export const ReasoningPart = z.object({ type: z.literal('reasoning'), text: z.string() }).strict().openapi('ReasoningPart');
/** Tool arguments: a JSON object (typed loosely: the RPC types cannot take a recursive JSON type). */
export const ToolArgs = z.record(z.string(), z.unknown());
/** A tool call the model made, in an assistant message. `name` is the namespaced `<server>__<tool>`. */
export const ToolCallPart = z
  .object({
    type: z.literal('tool_call'),
    tool_call_id: z.string().min(1),
    name: z.string().min(1).openapi({ description: '`<server>__<tool>`' }),
    args: ToolArgs.openapi({ description: 'A JSON object' }),
  })
  .strict()
  .openapi('ToolCallPart', { description: 'A tool call, in an assistant message' });
export type ToolCallPart = z.infer<typeof ToolCallPart>;
/** A tool's result, in a `tool` message: `result` is JSON (`{content: [...], structuredContent?, truncated?}` here). */
export const ToolResultPart = z
  .object({
    type: z.literal('tool_result'),
    tool_call_id: z.string().min(1),
    name: z.string().min(1),
    result: z.unknown().openapi({ description: 'JSON: `{content: [{type, ...}], structuredContent?, truncated?: true}`' }),
    is_error: z.boolean(),
  })
  .strict()
  .openapi('ToolResultPart', { description: 'A tool result, in a `tool` message' });
export type ToolResultPart = z.infer<typeof ToolResultPart>;
/** The parts this server produces and accepts (users send text and file parts). */
export const Part = z.discriminatedUnion('type', [TextPart, ReasoningPart, ToolCallPart, ToolResultPart, FilePart]).openapi('Part');
export type Part = z.infer<typeof Part>;

/** A part of a stored message: a known part, or a kind added later, kept as it is. */
export const MessagePart = z.union([Part, z.looseObject({ type: z.string() })]).openapi('MessagePart', {
  description:
    '{type:"text", text} | {type:"reasoning", text} | {type:"tool_call", tool_call_id, name, args} (assistant) | ' +
    '{type:"tool_result", tool_call_id, name, result, is_error} (tool) | {type:"file", file_id, name, media_type, size} (user)',
});
export type MessagePart = z.infer<typeof MessagePart>;

export const Role = z.enum(['system', 'user', 'assistant', 'tool']).openapi('Role');
export type Role = z.infer<typeof Role>;

export const ChatStatus = z.enum(['waiting', 'running', 'interrupting', 'error', 'requires_action']).openapi('ChatStatus');
export type ChatStatus = z.infer<typeof ChatStatus>;

/** Why the last turn failed; `kind` is e.g. `auth`, `rate_limit`, `timeout`, `interrupted`, `database_unavailable`. */
export const LastError = z.object({ message: z.string(), kind: z.string() }).openapi('LastError');
export type LastError = z.infer<typeof LastError>;

/** Token counts, as a model call reports them (and as a turn's outbox entry keeps them until it is written). */
export const TokenUsage = z.object({
  input_tokens: z.number().int(),
  output_tokens: z.number().int(),
  total_tokens: z.number().int(),
  reasoning_tokens: z.number().int(),
  cache_read_tokens: z.number().int(),
  cache_creation_tokens: z.number().int(),
});
export type TokenUsage = z.infer<typeof TokenUsage>;

/** A message's usage: its tokens and, on an answer, its cost. */
export const Usage = TokenUsage.extend({
  cost: z
    .string()
    .nullable()
    .openapi({ description: "The answer's cost, a decimal string (6 decimals) fixed when it was written; null when not priced" }),
}).openapi('Usage');
export type Usage = z.infer<typeof Usage>;

export const Message = z
  .object({
    id: z.number().int(),
    chat_id: z.uuid(),
    role: Role,
    content: z.array(MessagePart),
    model_config_id: z.uuid().nullable(),
    created_at: z.iso.datetime(),
    usage: Usage.optional(),
  })
  .openapi('Message');
export type Message = z.infer<typeof Message>;

export const QueuedMessage = z
  .object({
    id: z.uuid(),
    chat_id: z.uuid(),
    content: z.array(MessagePart),
    model_config_id: z.uuid().nullable(),
    created_at: z.iso.datetime(),
  })
  .openapi('QueuedMessage');
export type QueuedMessage = z.infer<typeof QueuedMessage>;

/** A tool call waiting for the chat owner's approval (`chat.pending_tool_calls`, status `requires_action`). */
export const PendingToolCall = z
  .object({ tool_call_id: z.string().min(1), name: z.string().min(1), args: ToolArgs, server: z.string() })
  .openapi('PendingToolCall', { description: 'A tool call waiting for approval (status requires_action)' });
export type PendingToolCall = z.infer<typeof PendingToolCall>;

/** What the caller may do with a chat: `owner` (everything) or `viewer` (read it and watch its stream). */
export const ChatAccess = z.enum(['owner', 'viewer']).openapi('ChatAccess');
/** Where a fork came from: the chat and the message it was forked at (`POST /chats/{id}/fork`). */
export const ForkedFrom = z
  .object({ chat_id: z.uuid(), message_id: z.number().int() })
  .openapi('ForkedFrom', { description: 'The chat and the message this chat was forked from' });
export type ForkedFrom = z.infer<typeof ForkedFrom>;

export const Chat = z
  .object({
    id: z.uuid(),
    owner_id: z.uuid(),
    title: z.string(),
    status: ChatStatus,
    last_model_config_id: z.uuid().nullable(),
    archived: z.boolean(),
    labels: z.record(z.string(), z.string()),
    agent_id: z.uuid().nullable(),
    // A union, not `.nullable()`: the document then says `LastError | null` (a nullable $ref becomes an allOf).
    last_error: z.union([LastError, z.null()]),
    /** The tool calls waiting for approval while `status` is `requires_action`; empty otherwise. */
    pending_tool_calls: z.array(PendingToolCall),
    // A union, not `.nullable()` (see last_error).
    forked_from: z.union([ForkedFrom, z.null()]),
    created_at: z.iso.datetime(),
    updated_at: z.iso.datetime(),
    access: ChatAccess,
  })
  .openapi('Chat');
export type Chat = z.infer<typeof Chat>;

/** A single-use credential for the stream, for clients that cannot send headers on a WebSocket (browsers). */
export const StreamTicket = z
  .object({ ticket: z.string(), expires_at: z.iso.datetime() })
  .openapi('StreamTicket', { description: 'Single use, valid 60 s: `GET /chats/{id}/stream?ticket=<ticket>` instead of a token' });
export type StreamTicket = z.infer<typeof StreamTicket>;

/** A Postgres timestamp (a Date from the driver, or its text) as the API's RFC 3339 string. */
export const Timestamp = z.coerce.date().transform((d) => d.toISOString());
/** A Postgres int8 (text from the driver) as a number. */
export const Int8 = z.union([z.string(), z.number()]).transform(Number);
