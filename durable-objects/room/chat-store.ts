/**
 * The Postgres side of one chat, as the chat's object uses it: every statement it runs, typed, with the chat id bound.
 * No state: the room decides when to call what, under its lock.
 */
import { z } from 'zod';
import {
  getChatMessageById,
  getChatMessageByKey,
  getChatMessagesAfter,
  getChatMessagesBefore,
  getChatMessagesByChatId,
  insertChatMessages,
  runQueuedMessage,
  softDeleteChatMessagesAfter,
  updateChatMessageContent,
} from '../../sql/generated/chat_messages.queries';
import { deleteQueuedMessage, getQueuedMessageByKey, getQueuedMessages, insertQueuedMessage, promoteQueuedMessage } from '../../sql/generated/chat_queue.queries';
import { deleteChatSummariesFrom } from '../../sql/generated/chat_summaries.queries';
import { createChat, deleteChatById, getChatById, insertChat, updateChatMeta, updateChatStatus } from '../../sql/generated/chats.queries';
import type { Conn, Db } from '../../functions/core/db';
import type { ChatGrants } from '../../functions/core/access';
import { fail, ok, type ImportChat, type MessagePageQuery, type MetaPatch, type PostResult, type RoomResult } from '../../functions/core/room-api';
import { pinAgentContext } from './pinned-context';
import { NoModelError, resolveModelCached, type ResolvedModel } from '../../functions/core/model-resolve';
import {
  MAX_QUEUED,
  toChat,
  toMessage,
  toQueued,
  titleSourceOf,
  type Chat,
  type ChatStatus,
  type LastError,
  type Message,
  type Part,
  type PendingToolCall,
  type QueuedMessage,
  type TitleSource,
} from '../../functions/core/chats';
import { getSetting } from '../../functions/core/site-config';
import { idempotencyKeyOfResult, idempotencyKeyOfStep, idempotencyKeyOfTurn, type FinishEntry } from './turn';
import { callParams, paired, writtenRows, type CallRecords, type NewMessage, type Written } from './written';
import { takePendingToolCall } from '../../sql/generated/chat_tools.queries';
import { forkChat, importChat } from '../../sql/generated/conversation_tools.queries';

/** The key stored with a request's message or queued message. */
export const requestKey = (idempotencyKey: string): string => `req:${idempotencyKey}`;

const MAX_ID = '9223372036854775807';
const NO_MODEL_MESSAGE = 'No default chat model config is configured.';
const UNAVAILABLE_MODEL = 'The requested model config is not available (unknown, disabled or deleted).';

export class ChatStore {
  constructor(
    private readonly chatId: () => string,
    private readonly db: () => Db,
  ) {}

  /**
   * The model a turn runs on: the requested config when usable; with `fallback`, the default when it is not. Cached
   * per isolate (no Postgres read per turn). A 400 result when there is none.
   */
  async resolve(configId: string | null, fallback: boolean): Promise<RoomResult<ResolvedModel>> {
    try {
      const r = await resolveModelCached(this.db(), configId);
      if (configId !== null && !fallback && !r.requested) return fail(400, UNAVAILABLE_MODEL);
      return ok(r);
    } catch (e) {
      if (e instanceof NoModelError) return fail(400, configId !== null && !fallback ? UNAVAILABLE_MODEL : NO_MODEL_MESSAGE);
      throw e;
    }
  }

  /** The chat row with its viewer grants, and where its title came from (which the API does not show); one statement. */
  async chat(): Promise<{ chat: Chat; grants: ChatGrants; titleSource: TitleSource } | null> {
    const [row] = await getChatById.run({ id: this.chatId() }, this.db());
    if (!row) return null;
    const ids = z.array(z.string());
    return {
      chat: toChat(row),
      grants: { userIds: ids.parse(row.acl_user_ids), groupIds: ids.parse(row.acl_group_ids) },
      titleSource: titleSourceOf(row),
    };
  }

  /**
   * Inserts messages in one statement; with `status`, the chat's status (and `lastError`) change in the same one.
   * The chats row is written only when the model config or the status changes.
   */
  async insert(
    conn: Conn,
    modelConfigId: string | null,
    ms: readonly NewMessage[],
    status?: { status: ChatStatus; lastError: LastError | null; pending?: readonly PendingToolCall[] },
    call?: CallRecords,
  ): Promise<Written> {
    const rows = await insertChatMessages.run(
      {
        chat_id: this.chatId(),
        model_config_id: modelConfigId,
        roles: ms.map((m) => m.role),
        contents: ms.map((m) => JSON.stringify(m.content)),
        created_bys: ms.map((m) => m.createdBy ?? ''),
        usages: ms.map((m) => JSON.stringify(m.usage ? { ...m.usage, cost_micros: m.cost ?? null } : null)),
        keys: ms.map((m) => m.key ?? ''),
        status: status?.status ?? null,
        last_error: status?.lastError ? JSON.stringify(status.lastError) : null,
        pending_tool_calls: status?.pending && status.pending.length > 0 ? JSON.stringify(status.pending) : null,
        ...callParams(call),
      },
      conn,
    );
    return { messages: paired(rows, ms), chatUpdatedAt: rows[0]?.chat_updated_at?.toISOString() ?? null };
  }

  /**
   * A turn's write: its assistant message (keyed by the turn, or by its step), its tool results (each keyed by its
   * call), and the chat's status, in one statement; idempotent.
   */
  async finish(entry: FinishEntry): Promise<Written> {
    const key = entry.step === null ? idempotencyKeyOfTurn(entry.turnId) : idempotencyKeyOfStep(entry.turnId, entry.step);
    const messages: NewMessage[] = [
      ...(entry.content.length > 0 ? [{ role: 'assistant' as const, content: entry.content, createdBy: null, usage: entry.usage, cost: entry.cost, key }] : []),
      ...entry.results.map((r) => ({ role: 'tool' as const, content: [r], createdBy: null, key: idempotencyKeyOfResult(entry.turnId, r.tool_call_id) })),
    ];
    const status = { status: entry.status, lastError: entry.lastError, pending: entry.pending };
    const call = { record: entry.record, debug: entry.debug };
    if (messages.length === 0) {
      const chat = await this.setStatus(entry.status, entry.lastError, call);
      return { messages: [], chatUpdatedAt: chat?.updated_at ?? null };
    }
    return await this.insert(this.db(), entry.modelConfigId, messages, status, call);
  }

  /** An approved tool call leaves the calls waiting for approval; null when it is not waiting (any more). */
  async takePending(toolCallId: string): Promise<Chat | null> {
    const [row] = await takePendingToolCall.run({ chat_id: this.chatId(), tool_call_id: toolCallId }, this.db());
    return row ? toChat(row) : null;
  }

  /** Takes a queued message out of the queue as the chat's next user message, the chat running, in one statement. */
  async runQueued(queuedId: string, modelConfigId: string): Promise<Written> {
    return writtenRows(await runQueuedMessage.run({ chat_id: this.chatId(), id: queuedId, model_config_id: modelConfigId }, this.db()));
  }

  async setStatus(status: ChatStatus, lastError: LastError | null, call?: CallRecords): Promise<Chat | null> {
    const [row] = await updateChatStatus.run(
      { id: this.chatId(), status, last_error: lastError ? JSON.stringify(lastError) : null, ...callParams(call) },
      this.db(),
    );
    return row ? toChat(row) : null;
  }

  /** Appends to the queue; null when it is full, or when the key is already stored (then see `byKey`). */
  async enqueue(q: { content: Part[]; modelConfigId: string | null; createdBy: string; key: string | null }): Promise<QueuedMessage | null> {
    const [row] = await insertQueuedMessage.run(
      {
        chat_id: this.chatId(),
        content: JSON.stringify(q.content),
        model_config_id: q.modelConfigId,
        created_by: q.createdBy,
        max: MAX_QUEUED,
        idempotency_key: q.key,
      },
      this.db(),
    );
    return row ? toQueued(row) : null;
  }

  /** What a request stored under its idempotency key: its message, or its queued message while it waits. */
  async byKey(key: string): Promise<PostResult | null> {
    const [m] = await getChatMessageByKey.run({ chat_id: this.chatId(), key }, this.db());
    if (m) return { kind: 'message', message: toMessage(m) };
    const [q] = await getQueuedMessageByKey.run({ chat_id: this.chatId(), key }, this.db());
    return q ? { kind: 'queued', queued_message: toQueued(q) } : null;
  }

  async queue(): Promise<QueuedMessage[]> {
    return (await getQueuedMessages.run({ chat_id: this.chatId() }, this.db())).map(toQueued);
  }

  async dequeue(id: string): Promise<boolean> {
    return (await deleteQueuedMessage.run({ chat_id: this.chatId(), id }, this.db())).length > 0;
  }

  async promote(id: string): Promise<QueuedMessage | null> {
    const [row] = await promoteQueuedMessage.run({ chat_id: this.chatId(), id }, this.db());
    return row ? toQueued(row) : null;
  }

  /** Every live message after an id, ascending. */
  async after(afterId: number): Promise<Message[]> {
    return (await getChatMessagesByChatId.run({ chat_id: this.chatId(), after_id: String(afterId) }, this.db())).map(toMessage);
  }

  /** One page of live messages, ascending by id. With only `before_id`, the newest page before it. */
  async page(q: MessagePageQuery): Promise<Message[]> {
    const params = {
      chat_id: this.chatId(),
      after_id: String(q.after_id ?? 0),
      before_id: q.before_id !== undefined ? String(q.before_id) : MAX_ID,
      limit: q.limit,
    };
    if (q.before_id !== undefined && q.after_id === undefined) {
      return (await getChatMessagesBefore.run(params, this.db())).map(toMessage).reverse();
    }
    return (await getChatMessagesAfter.run(params, this.db())).map(toMessage);
  }

  async message(id: number): Promise<Message | null> {
    const [row] = await getChatMessageById.run({ chat_id: this.chatId(), id: String(id) }, this.db());
    return row ? toMessage(row) : null;
  }

  /**
   * An edit, in one transaction: every later message is soft-deleted, summaries that covered the edited message go,
   * its content is replaced (with `content`; null keeps it: a regenerate), and the chat is running. Null when the
   * message is gone.
   */
  async rewind(messageId: number, content: Part[] | null): Promise<Message | null> {
    const chatId = this.chatId();
    return await this.db().inTx(async (tx) => {
      await softDeleteChatMessagesAfter.run({ chat_id: chatId, id: String(messageId) }, tx);
      // A regenerate keeps the user message: only summaries past it go.
      await deleteChatSummariesFrom.run({ chat_id: chatId, from_id: String(content === null ? messageId + 1 : messageId) }, tx);
      const [u] =
        content === null
          ? await getChatMessageById.run({ chat_id: chatId, id: String(messageId) }, tx)
          : await updateChatMessageContent.run({ chat_id: chatId, id: String(messageId), content: JSON.stringify(content) }, tx);
      if (!u) return null;
      await updateChatStatus.run({ id: chatId, status: 'running', last_error: null }, tx);
      return toMessage(u);
    });
  }

  /**
   * A fork of this chat (`ForkChat`: one statement): chat `id`, the owner's, with copies of the live messages up to
   * `messageId`. Null when that is not a live message of this chat.
   */
  async fork(id: string, ownerId: string, messageId: number): Promise<Chat | null> {
    const [row] = await forkChat.run({ id, owner_id: ownerId, source_id: this.chatId(), message_id: String(messageId) }, this.db());
    return row ? toChat(row.chat) : null;
  }

  /** This object's chat, created from an import (`ImportChat`: one statement); null when the id is taken. */
  async importChat(ownerId: string, input: ImportChat): Promise<Chat | null> {
    const [row] = await importChat.run(
      {
        id: this.chatId(),
        owner_id: ownerId,
        title: input.title,
        labels: JSON.stringify(input.labels),
        roles: input.messages.map((m) => m.role),
        contents: input.messages.map((m) => JSON.stringify(m.content)),
        created_ats: input.messages.map((m) => new Date(m.createdAt)),
      },
      this.db(),
    );
    return row ? toChat(row.chat) : null;
  }

  /**
   * Inserts the chat, running, with its first messages (after the deployment system prompt): one statement, or with an
   * agent one transaction that pins its context too. 'exists' when the id is taken (a replayed request),
   * 'unknown-agent' when the agent vanished.
   */
  async create(input: {
    ownerId: string;
    title: string;
    titleSource: TitleSource;
    labels: Record<string, string>;
    agentId: string | null;
    modelConfigId: string;
    messages: readonly NewMessage[];
  }): Promise<{ chat: Chat; messages: Message[] } | 'exists' | 'unknown-agent'> {
    const id = this.chatId();
    if (input.agentId === null) {
      // The common case is one statement: no transaction, no separate read of the system prompt.
      const [row] = await createChat.run(
        {
          id,
          owner_id: input.ownerId,
          title: input.title,
          title_source: input.titleSource,
          model_config_id: input.modelConfigId,
          labels: JSON.stringify(input.labels),
          roles: input.messages.map((m) => m.role),
          contents: input.messages.map((m) => JSON.stringify(m.content)),
          created_bys: input.messages.map((m) => m.createdBy ?? ''),
          keys: input.messages.map((m) => m.key ?? ''),
        },
        this.db(),
      );
      if (!row) return 'exists';
      const messages = z.array(z.unknown()).parse(row.messages ?? []).map(toMessage);
      return { chat: toChat(row.chat), messages };
    }
    try {
      return await this.db().inTx(async (tx) => {
        const [row] = await insertChat.run(
          {
            id,
            owner_id: input.ownerId,
            title: input.title,
            title_source: input.titleSource,
            status: 'running',
            last_model_config_id: input.modelConfigId,
            labels: JSON.stringify(input.labels),
            agent_id: input.agentId,
          },
          tx,
        );
        if (!row) throw new Exists();
        // Hydration: the chat pins its own copy of the agent's context, in the same transaction.
        if (input.agentId !== null && !(await pinAgentContext(tx, id, input.agentId, { replace: false }))) throw new UnknownAgent();
        const prompt = (await getSetting(tx, 'system_prompt')).trim();
        const first: NewMessage[] = prompt
          ? [{ role: 'system', content: [{ type: 'text', text: prompt }], createdBy: input.ownerId }, ...input.messages]
          : [...input.messages];
        const { messages } = await this.insert(tx, input.modelConfigId, first);
        return { chat: toChat(row), messages };
      });
    } catch (e) {
      if (e instanceof Exists) return 'exists';
      if (e instanceof UnknownAgent) return 'unknown-agent';
      throw e;
    }
  }

  async updateMeta(patch: MetaPatch): Promise<Chat | null> {
    const [row] = await updateChatMeta.run(
      {
        id: this.chatId(),
        title: patch.title ?? null,
        archived: patch.archived ?? null,
        labels: patch.labels ? JSON.stringify(patch.labels) : null,
      },
      this.db(),
    );
    return row ? toChat(row) : null;
  }

  async delete(): Promise<boolean> {
    return (await deleteChatById.run({ id: this.chatId() }, this.db())).length > 0;
  }
}

/** Thrown inside create()'s transaction to roll it back. */
class Exists extends Error {}
class UnknownAgent extends Error {}
