/**
 * What the Worker and a chat's Durable Object exchange over RPC: plain data, defined here so that neither side
 * imports the other (the Worker reaches the object through its binding type, `Env['CHAT_ROOM']`).
 */
import type { Chat, ChatStatus, LastError, Message, Part, QueuedMessage, Role, StreamTicket } from './shapes/chat';
import type { StreamStats } from './shapes/stream';
import type { ChatTools } from './shapes/tools';
import type { ChatActor } from './access';

export type { ChatActor } from './access';

/** What an RPC reports instead of throwing (errors lose their class across RPC). */
export type RoomFailure = { ok: false; status: 400 | 402 | 403 | 404 | 409 | 503; message: string; detail?: string };
export type RoomResult<T> = { ok: true; value: T } | RoomFailure;

export const ok = <T>(value: T): RoomResult<T> => ({ ok: true, value });
export const fail = (status: RoomFailure['status'], message: string, detail?: string): RoomFailure =>
  detail === undefined ? { ok: false, status, message } : { ok: false, status, message, detail };

export const NOT_FOUND = 'Resource not found or you do not have access to this resource';
/** A viewer of a shared chat asked to change it. */
export const VIEWER_FORBIDDEN = 'This chat is shared with you to read: only its owner can change it.';
export const DB_UNAVAILABLE = 'The database is unavailable. Try again shortly.';

export interface NewChat {
  /** The chat id: random, or derived from the request's Idempotency-Key so that a replay reaches the same object. */
  id: string;
  title: string;
  /** Whether the title is the caller's own (never replaced by the title model), or the first message's first words. */
  titleSource: 'owner' | 'first_words';
  labels: Record<string, string>;
  agentId: string | null;
  /** Null: the default config. */
  modelConfigId: string | null;
  /** The chat's first messages; the deployment system prompt, when set, is put before them here. */
  messages: { role: Role; content: Part[] }[];
  /** The request's Idempotency-Key: a replay answers the first response. */
  idempotencyKey: string | null;
}

export interface PostMessage {
  content: Part[];
  modelConfigId: string | null;
  busyBehavior: 'queue' | 'interrupt';
  /** The request's Idempotency-Key: a replay answers the first response and stores nothing. */
  idempotencyKey: string | null;
}

export type PostResult = { kind: 'message'; message: Message } | { kind: 'queued'; queued_message: QueuedMessage };

export interface MessagePageQuery {
  after_id?: number | undefined;
  before_id?: number | undefined;
  /** The page around this message id (never with after_id or before_id): `limit / 2` (floored) older, the rest from it on. */
  around?: number | undefined;
  limit: number;
}

/** The chat object's counters, as `GET /chats/{id}/stream-stats` shows them. */
export type RoomStats = StreamStats;

/** The result of a finished turn, reused by work after it (notifications, tests) instead of re-reading. */
export interface TurnOutcome {
  status: 'waiting' | 'error';
  finalText: string;
  error: LastError | null;
  modelConfigId: string;
}

/** Events sent to stream subscribers; each frame is a JSON array of them (`functions/core/shapes/stream.ts`). */
export type { StreamEvent } from './shapes/stream';

/** Credentials revoked: the user's sockets opened with them close (4401). */
export interface SocketRevocation {
  userId: string;
  /** The revoked keys (sessions and API keys), or `'all'` of the user's. */
  keyIds: string[] | 'all';
  /** A key that stays valid (the caller's own session, on "revoke the others"). */
  exceptKeyId?: string | undefined;
}

/** A chat to import (`POST /chats/import`, validated by `ChatExport`): the caller's, with these messages. */
export interface ImportChat {
  title: string;
  labels: Record<string, string>;
  messages: { role: Role; content: Message['content']; createdAt: string }[];
}

export type MetaPatch = { title?: string | undefined; archived?: boolean | undefined; labels?: Record<string, string> | undefined };

/**
 * The chat object's RPC surface, as the Worker calls it. `ChatRoom` implements it, and the binding's stub is
 * checked against it where the Worker takes it (`functions/lib/rooms.ts`). Every chat call carries the actor; the
 * object answers 404 for a chat that is not theirs.
 */
export interface ChatRoomRpc {
  get(actor: ChatActor): Promise<RoomResult<Chat>>;
  messages(actor: ChatActor, q: MessagePageQuery): Promise<RoomResult<Message[]>>;
  listQueue(actor: ChatActor): Promise<RoomResult<QueuedMessage[]>>;
  create(actor: ChatActor, input: NewChat): Promise<RoomResult<Chat>>;
  postMessage(actor: ChatActor, input: PostMessage): Promise<RoomResult<PostResult>>;
  editMessage(actor: ChatActor, input: { messageId: number; content: Part[] }): Promise<RoomResult<Message>>;
  interrupt(actor: ChatActor): Promise<RoomResult<{ status: ChatStatus }>>;
  deleteQueued(actor: ChatActor, id: string): Promise<RoomResult<null>>;
  promoteQueued(actor: ChatActor, id: string): Promise<RoomResult<PostResult>>;
  updateMeta(actor: ChatActor, patch: MetaPatch): Promise<RoomResult<Chat>>;
  deleteChat(actor: ChatActor): Promise<RoomResult<null>>;
  repinContext(actor: ChatActor): Promise<RoomResult<{ pinned: number; aggregate_hash: string }>>;
  /** The chat, when the actor owns it (403 for a viewer, 404 for anyone else): owner-only routes served by the Worker. */
  owned(actor: ChatActor): Promise<RoomResult<Chat>>;
  /** A single-use stream ticket for the actor, bound to the credential (`keyId`) that asked for it. */
  mintTicket(actor: ChatActor, keyId: string, keyExpiresAt: number | null): Promise<RoomResult<StreamTicket>>;
  decideToolCall(actor: ChatActor, input: { toolCallId: string; decision: 'approve' | 'deny'; reason: string | null }): Promise<RoomResult<Chat>>;
  tools(actor: ChatActor): Promise<RoomResult<ChatTools>>;
  /** A new chat `id` of the actor's, with copies of this chat's live messages up to `messageId`. */
  fork(actor: ChatActor, input: { id: string; messageId: number }): Promise<RoomResult<Chat>>;
  /** The answer after the last user message goes (as an edit removes it) and a new one runs. 409 while a turn runs. */
  regenerate(actor: ChatActor, input: { modelConfigId: string | null }): Promise<RoomResult<Chat>>;
  /** The chat and its whole live history, for an export. */
  exportChat(actor: ChatActor): Promise<RoomResult<{ chat: Chat; messages: Message[] }>>;
  /** Creates this object's chat, the actor's, from an import. */
  importChat(actor: ChatActor, input: ImportChat): Promise<RoomResult<Chat>>;
  contextDirty(): Promise<void>;
  closeSockets(r: SocketRevocation): Promise<number>;
  refresh(): Promise<void>;
  purge(): Promise<void>;
  stats(): Promise<RoomStats>;
  outcome(): Promise<TurnOutcome | null>;
  idle(): Promise<ChatStatus | null>;
  /**
   * Access to the chat changed (its grants, or a user's groups): the object reloads its grants and closes with 4403
   * the sockets whose user can no longer read the chat. With `user`, that user's sockets take their new groups first.
   */
  accessChanged(user: { userId: string; groupIds: string[] } | null): Promise<number>;
  fetch(request: Request): Promise<Response>;
}
