import type { ChatActor } from '../functions/core/access';
import { isTransient } from '../functions/core/db';
import {
  DB_UNAVAILABLE,
  fail,
  NOT_FOUND,
  ok,
  type ChatRoomRpc,
  type MessagePageQuery,
  type ImportChat,
  type MetaPatch,
  type NewChat,
  type PostMessage,
  type PostResult,
  type RoomResult,
} from '../functions/core/room-api';
import { pinAgentContext } from './room/pinned-context';
import type { Chat, ChatStatus, Message, Part, QueuedMessage, StreamTicket } from '../functions/core/shapes/chat';
import type { ChatTools } from '../functions/core/shapes/tools';
import { requestKey } from './room/chat-store';
import { refusal, RULES } from './room/guard';
import { RoomInternal } from './room/room-internal';
import { decideToolCall, type Decision } from './room/tool-approvals';

const NOT_PENDING = 'This tool call is not waiting for approval.';
const TOOLS_LIST_TIMEOUT_MS = 15_000;
const QUEUE_FULL = "The chat's queue is full (20 messages). Wait for a turn to finish or remove a queued message.";

/**
 * One object per chat: the single writer of the chat's history (so per-chat order is exact), the one place that
 * decides whether a turn runs (every decision is made under the lock, so at most one model call exists per chat), and
 * the access check on every call (it holds the chat row). These are its RPC methods: each names its rule in
 * `room/guard.ts`, applied by `RoomBase.call` before the body runs. `RoomBase` wires the parts (chat state, writer,
 * turn lifecycle and runner, queue, outbox, stream hub, store) and answers the runtime (stream, sockets, alarm);
 * `RoomInternal` holds the methods the deployment calls (never a user).
 */
export class ChatRoom extends RoomInternal implements ChatRoomRpc {
  // ------------------------------------------------------------------ RPC: reads

  /**
   * The chat as the actor sees it (`access`: owner or viewer), when they may see it (from memory once loaded: a read
   * never waits behind a write holding the lock).
   */
  async get(actor: ChatActor): Promise<RoomResult<Chat>> {
    const loaded = this.state.loaded;
    if (loaded && !this.state.gone) return refusal(RULES.get, actor, loaded, this.state.grants) ?? ok(this.seenBy(actor, loaded));
    return await this.call('get', actor, (chat) => Promise.resolve(ok(this.seenBy(actor, chat))));
  }

  /** The chat, for its owner only (a viewer gets 403): the guard of owner-only routes the Worker serves (ACL, links). */
  async owned(actor: ChatActor): Promise<RoomResult<Chat>> {
    return await this.call('owned', actor, (chat) => Promise.resolve(ok(chat)));
  }

  /** A page of live messages, from the cache when it holds the range, else from Postgres. */
  async messages(actor: ChatActor, q: MessagePageQuery): Promise<RoomResult<Message[]>> {
    return await this.call('messages', actor, async () => ok(await this.state.page(q)));
  }

  async listQueue(actor: ChatActor): Promise<RoomResult<QueuedMessage[]>> {
    return await this.call('listQueue', actor, async () => ok(await this.state.loadQueue()));
  }

  /** The tools the chat's turns see now (listing their servers), with their approval modes and the servers left out. */
  async tools(actor: ChatActor): Promise<RoomResult<ChatTools>> {
    const allowed = await this.call('tools', actor, (chat) => Promise.resolve(ok(chat.agent_id !== null)));
    if (!allowed.ok) return allowed;
    try {
      const set = await this.toolbox.resolve(await this.runner.pinnedServers(allowed.value), AbortSignal.timeout(TOOLS_LIST_TIMEOUT_MS));
      return ok({
        tools: [...set.tools.values()].map((t) => ({
          name: t.name,
          server: t.server,
          tool: t.tool,
          description: t.description,
          approval: t.approval,
          pinned: t.pinned,
          input_schema: t.inputSchema,
        })),
        unavailable: set.unavailable,
      });
    } catch (e) {
      if (isTransient(e)) return fail(503, DB_UNAVAILABLE);
      throw e;
    }
  }

  /** A single-use stream ticket for the actor, bound to the credential that asked for it (`room/tickets.ts`). */
  async mintTicket(actor: ChatActor, keyId: string, keyExpiresAt: number | null): Promise<RoomResult<StreamTicket>> {
    const groupIds = [...(actor.groupIds ?? [])];
    return await this.call('mintTicket', actor, async () => ok(await this.tickets.mint({ userId: actor.userId, keyId, keyExpiresAt, groupIds })));
  }

  // ------------------------------------------------------------------ RPC: writes

  /** Inserts the chat and its first messages in one transaction, running, then starts the first turn. */
  async create(actor: ChatActor, input: NewChat): Promise<RoomResult<Chat>> {
    // The rule is `create`: there is no chat to check yet, and an existing one answers only its owner's replay.
    return await this.guard(async () => {
      // A replay this object answered before: its first reply is kept. Otherwise the insert itself finds out (a taken
      // id inserts nothing), so a first creation with a key costs no read.
      if (input.idempotencyKey !== null && this.ctx.storage.kv.get('create_reply') !== undefined) {
        const existing = await this.state.load();
        if (existing) return this.replayCreate(actor, existing);
      }
      const resolved = await this.store.resolve(input.modelConfigId, false);
      if (!resolved.ok) return resolved;
      const refused = await this.budget.refusal(actor.userId, resolved.value);
      if (refused) {
        // A replay of a creation that went through answers it, whatever was spent since.
        const existing = input.idempotencyKey === null ? null : await this.state.load();
        return existing ? this.replayCreate(actor, existing) : refused;
      }
      const key = input.idempotencyKey;
      const r = await this.store.create({
        ownerId: actor.userId,
        title: input.title,
        titleSource: input.titleSource,
        labels: input.labels,
        agentId: input.agentId,
        modelConfigId: resolved.value.config.id,
        messages: input.messages.map((m) => ({ ...m, createdBy: actor.userId, key: m.role === 'user' && key !== null ? requestKey(key) : null })),
      });
      if (r === 'unknown-agent') return fail(400, 'Unknown agent.');
      if (r === 'exists') {
        const chat = await this.state.load();
        return chat ? this.replayCreate(actor, chat) : fail(409, 'This chat id is taken.');
      }
      this.state.created(r.chat, r.messages, input.titleSource);
      this.runner.fresh(r.chat.agent_id !== null);
      this.turns.start(resolved.value);
      if (key !== null) this.ctx.storage.kv.put('create_reply', JSON.stringify(r.chat));
      return ok(r.chat);
    });
  }

  /** A new user message: runs now when the chat is idle, else queues (or interrupts the running turn). */
  async postMessage(actor: ChatActor, input: PostMessage): Promise<RoomResult<PostResult>> {
    return await this.call('postMessage', actor, async (chat) => {
      const key = input.idempotencyKey === null ? null : requestKey(input.idempotencyKey);
      const known = this.replies.get(key);
      if (known) return ok(known);
      // A stored message (or queued one) answers its replay, without stopping, queueing or charging anything again.
      const replay = async () => {
        const prior = key === null ? null : await this.store.byKey(key);
        return prior ? ok(this.replies.remember(key, prior)) : null;
      };
      await this.turns.drain();
      const busy = this.turns.busy(this.state.view());
      if (busy && input.busyBehavior === 'queue') return await this.enqueue(actor, input, key, replay);
      // A replay must not stop the turn its first request started.
      if (busy) {
        const prior = await replay();
        if (prior) return prior;
      }
      const resolved = await this.store.resolve(input.modelConfigId ?? chat.last_model_config_id, input.modelConfigId === null);
      if (!resolved.ok) return resolved;
      const refused = await this.budget.refusal(chat.owner_id, resolved.value);
      // A refused message must not stop the running turn; the replay of a message that was stored answers it.
      if (refused) return (busy ? null : await replay()) ?? refused;
      if (busy) await this.turns.stop({ runQueue: false });
      const config = resolved.value.config.id;
      const { written } = await this.writer.commit(
        () => this.store.insert(this.db(), config, [{ role: 'user', content: input.content, createdBy: actor.userId, key }], { status: 'running', lastError: null }),
        { status: 'running', last_error: null, last_model_config_id: config },
      );
      const [message] = written.messages;
      if (!message) {
        const prior = await replay();
        if (!prior) throw new Error('the insert returned no message');
        return prior;
      }
      this.turns.start(resolved.value);
      return ok(this.replies.remember(key, { kind: 'message', message }));
    });
  }

  /** Queues a message behind the running turn (409 when the queue is full). */
  private readonly enqueue = async (
    actor: ChatActor,
    input: PostMessage,
    key: string | null,
    replay: () => Promise<RoomResult<PostResult> | null>,
  ): Promise<RoomResult<PostResult>> => {
    if (input.modelConfigId) {
      const check = await this.store.resolve(input.modelConfigId, false);
      if (!check.ok) return check;
    }
    const queued = await this.store.enqueue({ content: input.content, modelConfigId: input.modelConfigId, createdBy: actor.userId, key });
    if (!queued) return (await replay()) ?? fail(409, QUEUE_FULL);
    await this.state.refreshQueue();
    return ok(this.replies.remember(key, { kind: 'queued', queued_message: queued }));
  };

  /** Replaces a user message's content, drops every later message, refreshes subscribers, runs a new turn. */
  async editMessage(actor: ChatActor, input: { messageId: number; content: Part[] }): Promise<RoomResult<Message>> {
    return await this.call('editMessage', actor, async (chat) => {
      await this.turns.drain();
      const target = await this.store.message(input.messageId);
      if (!target) return fail(404, NOT_FOUND);
      if (target.role !== 'user') return fail(400, 'Only user messages can be edited.');
      const resolved = await this.store.resolve(chat.last_model_config_id, true);
      if (!resolved.ok) return resolved;
      const refused = await this.budget.refusal(chat.owner_id, resolved.value);
      if (refused) return refused;
      // The running turn answers the history being replaced: it stops, and what it produced goes with that history.
      await this.turns.stop({ runQueue: false, discard: true });
      const updated = await this.rewind(chat, input.messageId, input.content, resolved.value);
      return updated ? ok(updated) : fail(404, NOT_FOUND);
    });
  }

  /**
   * The answer after the last user message (its assistant and tool messages) goes, as an edit removes it (the same
   * path, the user message kept), subscribers get `full_refresh`, and a new answer runs, on `modelConfigId` when given.
   * 409 while a turn runs or tool calls wait for approval.
   */
  async regenerate(actor: ChatActor, input: { modelConfigId: string | null }): Promise<RoomResult<Chat>> {
    return await this.call('regenerate', actor, async (chat) => {
      await this.turns.drain();
      if (this.turns.busy(this.state.view())) return fail(409, 'A turn is running: wait for it to end (or interrupt it), then regenerate.');
      const lastUser = (await this.state.history()).findLast((m) => m.role === 'user');
      if (!lastUser) return fail(409, 'This chat has no user message to answer again.');
      const resolved = await this.store.resolve(input.modelConfigId ?? chat.last_model_config_id, input.modelConfigId === null);
      if (!resolved.ok) return resolved;
      const refused = await this.budget.refusal(chat.owner_id, resolved.value);
      if (refused) return refused;
      const kept = await this.rewind(chat, lastUser.id, null, resolved.value);
      return kept ? ok(this.state.view()) : fail(404, NOT_FOUND);
    });
  }

  /** A new chat of the caller's holding copies of this chat's live messages up to `messageId` (one statement). */
  async fork(actor: ChatActor, input: { id: string; messageId: number }): Promise<RoomResult<Chat>> {
    return await this.call('fork', actor, async () => {
      // Turn writes waiting in the outbox are applied first: the fork copies what the chat shows.
      await this.turns.drain();
      const chat = await this.store.fork(input.id, actor.userId, input.messageId);
      return chat ? ok(chat) : fail(404, 'This chat has no message with this id.');
    });
  }

  /** The chat and its whole live history (from the cache when it holds all of it). */
  async exportChat(actor: ChatActor): Promise<RoomResult<{ chat: Chat; messages: Message[] }>> {
    return await this.call('exportChat', actor, async (chat) => ok({ chat, messages: await this.state.history() }));
  }

  /** Creates this object's chat, the caller's, from an import: waiting, no turn runs. 409 when the id is taken. */
  async importChat(actor: ChatActor, input: ImportChat): Promise<RoomResult<Chat>> {
    return await this.guard(async () => {
      const chat = await this.store.importChat(actor.userId, input);
      return chat ? ok(chat) : fail(409, 'This chat id is taken.');
    });
  }

  /** Stops the running turn; its partial text is kept. Returns the status after the request. */
  async interrupt(actor: ChatActor): Promise<RoomResult<{ status: ChatStatus }>> {
    return await this.call('interrupt', actor, async (chat) => {
      const turn = this.turns.current;
      if (chat.status === 'requires_action') {
        // Waiting for approvals (an approved call may be running): the turn ends now, its calls answered as stopped.
        turn?.abort.abort();
        await this.turns.stop({ runQueue: true });
        return ok({ status: this.state.view().status });
      }
      if (!turn) {
        // A tool step waiting in the outbox would go on once written: it stops there instead.
        if (this.outbox.size > 0) this.turns.stopAfterDrain = true;
        return ok({ status: chat.status });
      }
      // The call stops first, whether or not Postgres can record `interrupting`.
      turn.abort.abort();
      try {
        const row = await this.store.setStatus('interrupting', null);
        if (row) this.state.set(row);
        this.hub.publish([this.state.statusEvent()]);
      } catch (e) {
        if (!isTransient(e)) throw e;
      }
      return ok({ status: 'interrupting' });
    });
  }

  async deleteQueued(actor: ChatActor, id: string): Promise<RoomResult<null>> {
    return await this.call('deleteQueued', actor, async () => {
      if (!(await this.store.dequeue(id))) return fail(404, NOT_FOUND);
      await this.state.refreshQueue();
      return ok(null);
    });
  }

  /** Moves a queued message to the front. When the chat is idle it runs at once (`message`), else it is next. */
  async promoteQueued(actor: ChatActor, id: string): Promise<RoomResult<PostResult>> {
    return await this.call('promoteQueued', actor, async () => {
      await this.turns.drain();
      const row = await this.store.promote(id);
      if (!row) return fail(404, NOT_FOUND);
      if (this.turns.busy(this.state.view())) {
        await this.state.refreshQueue();
        return ok<PostResult>({ kind: 'queued', queued_message: row });
      }
      this.state.dropQueue();
      const started = await this.turns.runNextQueued();
      if (!started.ok) return started;
      return started.value ? ok<PostResult>({ kind: 'message', message: started.value }) : fail(404, NOT_FOUND);
    });
  }

  /**
   * The owner's decision on a tool call waiting for approval: 409 when it is not waiting. An approved call runs, a
   * denied one is answered with an error result; once none waits, the turn goes on. Answers the chat after it.
   */
  async decideToolCall(actor: ChatActor, input: { toolCallId: string } & Decision): Promise<RoomResult<Chat>> {
    return await this.call('decideToolCall', actor, async () => {
      await this.turns.drain();
      const chat = this.state.view();
      const call = chat.status === 'requires_action' ? chat.pending_tool_calls.find((c) => c.tool_call_id === input.toolCallId) : undefined;
      if (!call) return fail(409, NOT_PENDING);
      const done = await decideToolCall({ state: this.state, store: this.store, hub: this.hub, turns: this.turns }, call, input);
      return done ? ok(this.state.view()) : fail(409, NOT_PENDING);
    });
  }

  /** Renames, archives or relabels. */
  async updateMeta(actor: ChatActor, patch: MetaPatch): Promise<RoomResult<Chat>> {
    return await this.call('updateMeta', actor, async () => {
      const row = await this.store.updateMeta(patch);
      if (!row) return fail(404, NOT_FOUND);
      // The owner's title: the title model never replaces it.
      if (patch.title !== undefined) this.state.titleSource = 'owner';
      this.state.set(row);
      return ok(this.state.view());
    });
  }

  /** Deletes the chat (every chat-scoped row goes by ON DELETE CASCADE), its turn, and everything held here. */
  async deleteChat(actor: ChatActor): Promise<RoomResult<null>> {
    return await this.call('deleteChat', actor, async () => {
      await this.store.delete();
      await this.forgetAll();
      return ok(null);
    });
  }

  /**
   * Re-pins the chat's context from its agent's current set: delete + copy in one transaction, the agent's aggregate
   * hash stamped and the dirty mark cleared. The next turn reads the new pin.
   */
  async repinContext(actor: ChatActor): Promise<RoomResult<{ pinned: number; aggregate_hash: string }>> {
    return await this.call('repinContext', actor, async (chat) => {
      const agentId = chat.agent_id;
      if (agentId === null) return fail(409, 'This chat has no agent to pin context from.');
      const r = await this.db().inTx((tx) => pinAgentContext(tx, this.chatId(), agentId, { replace: true }));
      if (!r) return fail(409, "The chat's agent no longer exists; its pinned context is kept.");
      this.runner.forgetPinned();
      return ok({ pinned: r.pinned, aggregate_hash: r.aggregateHash });
    });
  }
}
