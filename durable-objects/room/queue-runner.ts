/**
 * The chat's queue, from the turn's side: when no turn runs, the queue's first message becomes the next user message
 * (its model resolved and its spend checked first; taking it out of the queue and inserting it is one statement, so a
 * failure loses nothing). When it cannot run, the chat pauses: status `error` (kind `config` or `spend_limit`), the
 * message stays first in the queue until the next message or a promote.
 */
import type { LastError, Message } from '../../functions/core/chats';
import type { ResolvedModel } from '../../functions/core/model-resolve';
import { ok, type RoomFailure, type RoomResult, type StreamEvent } from '../../functions/core/room-api';
import type { Budget } from './budget';
import type { ChatState } from './chat-state';
import type { ChatStore } from './chat-store';
import type { ChatWriter } from './chat-writer';
import type { StreamHub } from './stream-hub';

/** A queued message that became the chat's next user message: its turn is to start with `resolved`. */
export interface Dequeued {
  message: Message;
  resolved: ResolvedModel;
  /** When it was queued (ms since the epoch): its turn's first call was wanted since then. */
  queuedAt: number;
}

export interface QueueRunnerDeps {
  chatId: () => string;
  state: ChatState;
  store: ChatStore;
  writer: ChatWriter;
  hub: StreamHub;
  budget: Budget;
}

export class QueueRunner {
  constructor(private readonly deps: QueueRunnerDeps) {}

  /**
   * Takes the queue's first message as the next user message (the chat `running`), sending `before` (a finished turn's
   * events) ahead of it. Null when the queue is empty; a failure when the chat paused.
   */
  async next(before: StreamEvent[] = []): Promise<RoomResult<Dequeued | null>> {
    const { state, store, writer } = this.deps;
    // This object is the queue's only writer: a queue it knows to be empty needs no Postgres round trip.
    const [head] = await state.loadQueue();
    if (!head) return ok(null);
    // Paused, not lost: the message stays first in the queue.
    const resolved = await this.resolveOrPause(head.model_config_id ?? state.view().last_model_config_id, before);
    if (!resolved.ok) return resolved;
    const refused = await this.deps.budget.refusal(state.view().owner_id, resolved.value);
    if (refused) {
      const when = refused.detail ?? 'the end of the period';
      return await this.pause(refused, { kind: 'spend_limit', message: `${refused.message} It resets at ${when}.` }, before);
    }
    const { config } = resolved.value;
    const rest = (await state.loadQueue()).filter((q) => q.id !== head.id);
    const { written } = await writer.commit(
      () => store.runQueued(head.id, config.id),
      { status: 'running', last_error: null, last_model_config_id: config.id },
      { before: [...before, { type: 'queue_update', chat_id: this.deps.chatId(), queued_messages: rest }] },
    );
    state.took(head.id);
    const [message] = written.messages;
    if (!message) {
      await state.refreshQueue();
      return ok(null);
    }
    const queuedAt = Date.parse(head.created_at);
    return ok({ message, resolved: resolved.value, queuedAt: Number.isFinite(queuedAt) ? Math.min(queuedAt, Date.now()) : Date.now() });
  }

  /**
   * The model the next turn runs with; when none is usable the chat pauses (status `error`, kind `config`), published
   * after `before` (a finished turn's events).
   */
  async resolveOrPause(modelConfigId: string | null, before: StreamEvent[] = []): Promise<RoomResult<ResolvedModel>> {
    const resolved = await this.deps.store.resolve(modelConfigId, true);
    if (resolved.ok) return resolved;
    return await this.pause(resolved, { kind: 'config', message: resolved.message }, before);
  }

  /** The queue's next message cannot run: the chat shows `error` and the queue pauses (the message stays first). */
  private async pause(failure: RoomFailure, error: LastError, before: StreamEvent[]): Promise<RoomFailure> {
    const { state, store, hub } = this.deps;
    const row = await store.setStatus('error', error);
    if (row) state.set(row);
    hub.publish([...before, { type: 'error', chat_id: this.deps.chatId(), error }, state.statusEvent()]);
    return failure;
  }
}
