/**
 * The stream's frames (`GET /chats/{id}/stream`), as zod schemas: the chat's object builds its events with these
 * types, and the OpenAPI document carries them as components (`StreamFrame`, `StreamEvent`, ...), so the SDK's
 * stream types and its frame parsing are generated from the same definitions.
 */
import { z } from '@hono/zod-openapi';
import { ChatStatus, LastError, Message, Part, QueuedMessage } from './chat';

const chat_id = z.uuid();

export const MessageEvent = z
  .object({ type: z.literal('message'), chat_id, message: Message })
  .openapi('StreamMessageEvent', { description: 'A durable message' });

export const MessagePartEvent = z
  .object({
    type: z.literal('message_part'),
    chat_id,
    message_part: z.object({ role: z.enum(['assistant', 'tool']), part: Part, seq: z.number().int().nonnegative() }),
  })
  .openapi('StreamMessagePartEvent', {
    description:
      'A delta of the turn in progress (role `tool`: a tool result); `seq` starts at 0 per turn, and per step of a turn ' +
      'with tools, and a part with seq 0 means "start over"',
  });

export const StatusEvent = z
  .object({ type: z.literal('status'), chat_id, status: z.object({ status: ChatStatus, last_error: LastError.optional() }) })
  .openapi('StreamStatusEvent');

export const ErrorEvent = z.object({ type: z.literal('error'), chat_id, error: LastError }).openapi('StreamErrorEvent');

export const QueueUpdateEvent = z
  .object({ type: z.literal('queue_update'), chat_id, queued_messages: z.array(QueuedMessage) })
  .openapi('StreamQueueUpdateEvent', { description: 'The whole queue, after every change' });

export const FullRefreshEvent = z
  .object({ type: z.literal('full_refresh'), chat_id, messages: z.array(Message) })
  .openapi('StreamFullRefreshEvent', { description: 'Replace local history (after an edit)' });

export const ContextDirtyEvent = z
  .object({ type: z.literal('context_dirty'), chat_id })
  .openapi('StreamContextDirtyEvent', {
    description: "The chat's agent changed its context since the chat pinned it (`PUT /chats/{id}/context` re-pins)",
  });

export const TitleEvent = z
  .object({ type: z.literal('title'), chat_id, title: z.string() })
  .openapi('StreamTitleEvent', { description: "The chat's title, written by the title model after its first answer" });

export const StreamEvent = z
  .discriminatedUnion('type', [MessageEvent, MessagePartEvent, StatusEvent, ErrorEvent, QueueUpdateEvent, FullRefreshEvent, ContextDirtyEvent, TitleEvent])
  .openapi('StreamEvent');
export type StreamEvent = z.infer<typeof StreamEvent>;

/** Every server frame but the pong: a batch of events. */
export const StreamFrame = z.array(StreamEvent).openapi('StreamFrame', { description: 'A server frame: a JSON array of events' });

/** The one frame a client may send; the server answers it with `StreamPong`. Anything else closes with 1008. */
export const StreamPing = z.object({ type: z.literal('ping') }).strict().openapi('StreamPing');
export const StreamPong = z.object({ type: z.literal('pong') }).strict().openapi('StreamPong');

/** The schemas the OpenAPI document lists for the stream (they are not reached from any route's body). */
export const streamComponents = { StreamFrame, StreamPing, StreamPong } as const;

/** A chat's stream counters since its object last started (`GET /chats/{id}/stream-stats`, owners). */
export const StreamStats = z
  .object({
    cacheCatchups: z.number().int(),
    dbCatchups: z.number().int(),
    fullRefreshes: z.number().int(),
    /** Times the model's history was read from Postgres (a cold object's first turn; never again while it is warm). */
    historyReads: z.number().int(),
    sockets: z.number().int(),
    cached: z.number().int(),
    /** The estimated bytes the cached messages take (bounded: MessageCache.maxBytes). */
    cachedBytes: z.number().int(),
    compactions: z.number().int(),
    /** Message pages (`GET /messages`) answered from the cache, and from Postgres. */
    cachePages: z.number().int(),
    dbPages: z.number().int(),
    /** Turn endings waiting in the object's outbox for Postgres. */
    outbox: z.number().int(),
  })
  .openapi('StreamStats');
export type StreamStats = z.infer<typeof StreamStats>;
