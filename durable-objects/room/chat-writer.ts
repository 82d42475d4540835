/**
 * The one write path of a chat's history: a statement runs, what it wrote goes into the object's state (the row's new
 * status and `updated_at`, the cache's new messages), then out to the sockets, in that order. Posting a message,
 * running the queue's next one and writing a turn's step or end all go through `commit`.
 */
import type { Chat, Message } from '../../functions/core/chats';
import type { StreamEvent } from '../../functions/core/room-api';
import type { ChatState } from './chat-state';
import type { Written } from './written';
import type { StreamHub } from './stream-hub';

/** The fields of the chat row a write changes, as they are in Postgres once it committed. */
export type RowChange = Partial<Pick<Chat, 'status' | 'last_error' | 'last_model_config_id' | 'pending_tool_calls'>>;

export interface CommitOptions {
  /** Events sent before the write's messages (a finished turn's, ahead of the next queued message). */
  before?: StreamEvent[];
  /** Events sent after its messages (a failed turn's error). */
  after?: StreamEvent[];
  /** Whether the status follows them (default true). */
  status?: boolean;
  /**
   * Nothing is sent: the events are handed back, for the caller to send with what comes next (a turn's end, which the
   * queue's next message follows in the same frame, or which is sent with its status once the queue is known empty).
   */
  hold?: boolean;
}

export interface Commit {
  written: Written;
  /** The events of the write (sent, unless held). */
  events: StreamEvent[];
}

/** `message` events of durable messages, in id order. */
export function messageEvents(chatId: string, messages: readonly Message[]): StreamEvent[] {
  return messages.map((message) => ({ type: 'message', chat_id: chatId, message }));
}

export class ChatWriter {
  constructor(
    private readonly chatId: () => string,
    private readonly state: ChatState,
    private readonly hub: StreamHub,
  ) {}

  /**
   * Runs one write and applies it: the row takes `change` (and the statement's `updated_at`), the cache the new
   * messages; then the sockets get `before`, the messages, `after` and the status, in one frame (unless held).
   */
  async commit(write: () => Promise<Written>, change: RowChange, opts: CommitOptions = {}): Promise<Commit> {
    const written = await write();
    const chat = this.state.loaded ?? (await this.state.load());
    if (!chat) return { written, events: [] };
    this.state.set({ ...chat, ...change, updated_at: written.chatUpdatedAt ?? chat.updated_at });
    this.state.cache.append(written.messages);
    const events = [...(opts.before ?? []), ...messageEvents(this.chatId(), written.messages), ...(opts.after ?? [])];
    if (opts.status !== false) events.push(this.state.statusEvent());
    if (opts.hold !== true) this.hub.publish(events);
    return { written, events };
  }
}
