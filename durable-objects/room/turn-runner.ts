/**
 * Runs a turn's model call: builds the prompt (history, the pinned context, the compaction summary, compacting first
 * when the context has reached the model's threshold) and streams the answer. It keeps what it read for later turns
 * (the summary, the pinned context) and never writes the turn's outcome: the room does, under its lock.
 */
import { getChatPromptContext } from '../../sql/generated/chat_context.queries';
import { getLatestChatSummary, insertChatSummary } from '../../sql/generated/chat_summaries.queries';
import type { Db } from '../../functions/lib/db';
import { keyRing } from '../../functions/lib/keyring';
import { buildPrompt, compactionPlan, contextTokens, shouldCompact, summaryRequest, type Prompt, type Summary } from '../../functions/llm/compaction';
import { callModel, ModelError, type ModelDelta } from '../../functions/llm/model';
import { promptContextItems, renderPromptContext, type PromptContextItem } from '../../functions/services/agent-context';
import { sealBinding, type ResolvedModel } from '../../functions/services/chat-models';
import type { Message } from '../../functions/services/chats';
import type { CallOutcome, Turn } from './turn';

export interface RunnerDeps {
  chatId: () => string;
  db: () => Db;
  /** The chat's whole live history (from the room's cache when it holds all of it). */
  history: () => Promise<Message[]>;
  /** Whether the chat has an agent (then its pinned context is read). */
  hasAgent: () => Promise<boolean>;
  encryptionKey: string;
  idleTimeoutMs: number;
  maxRetries: number;
  onDelta: (turn: Turn, d: ModelDelta) => void;
}

export class TurnRunner {
  /** The newest compaction summary; undefined until read once (then kept current here). */
  private summary: Summary | null | undefined = undefined;
  /** The pinned instruction files and skills; undefined until read once (dropped on re-pin). */
  private pinned: PromptContextItem[] | undefined = undefined;
  /** Bumped whenever `pinned` is dropped, so a read that raced with a re-pin is not kept. */
  private pinnedGeneration = 0;
  compactions = 0;

  constructor(private readonly deps: RunnerDeps) {}

  /** Forget what was read (after an edit, a re-pin, or an error that may have left it stale). */
  forget(): void {
    this.summary = undefined;
    this.pinned = undefined;
    this.pinnedGeneration += 1;
  }

  /** A chat just created: it has no summary yet, and pinned context only with an agent (nothing to read). */
  fresh(hasAgent: boolean): void {
    this.forget();
    this.summary = null;
    if (!hasAgent) this.pinned = [];
  }

  forgetPinned(): void {
    this.pinned = undefined;
    this.pinnedGeneration += 1;
  }

  /** The model call of a turn. Never rejects: failures are classified into a `ModelError`. */
  async run(turn: Turn): Promise<CallOutcome> {
    try {
      const apiKey = await this.openApiKey(turn.resolved);
      const prompt = await this.promptFor(turn, apiKey);
      const result = await callModel({
        resolved: turn.resolved,
        apiKey,
        system: prompt.system,
        messages: prompt.messages,
        signal: turn.abort.signal,
        onDelta: (d) => {
          this.deps.onDelta(turn, d);
        },
        idleTimeoutMs: this.deps.idleTimeoutMs,
        maxRetries: this.deps.maxRetries,
      });
      return { result, failure: null };
    } catch (e) {
      if (e instanceof ModelError) return { result: null, failure: e };
      if (turn.abort.signal.aborted) {
        return { result: { text: '', reasoning: '', usage: emptyUsage(), usageKnown: false, finishReason: 'aborted' }, failure: null };
      }
      console.error(JSON.stringify({ level: 'error', msg: 'turn failed', chat_id: this.deps.chatId(), error: String(e) }));
      return { result: null, failure: new ModelError('network', 'The turn failed unexpectedly.') };
    }
  }

  private async openApiKey(resolved: ResolvedModel): Promise<string | null> {
    const sealed = resolved.provider.api_key;
    if (!sealed) return null;
    try {
      const ring = await keyRing(this.deps.encryptionKey);
      return await ring.open(sealed, sealBinding(resolved.provider.id));
    } catch (e) {
      console.error(JSON.stringify({ level: 'error', msg: 'cannot open provider key', provider: resolved.provider.provider, error: String(e) }));
      throw new ModelError('config', "The provider's API key cannot be decrypted on this deployment.");
    }
  }

  /**
   * The prompt for a turn; compacts first when the context has reached the model's threshold. A failed compaction
   * is logged and the turn goes on with the full history.
   */
  private async promptFor(turn: Turn, apiKey: string | null): Promise<Prompt> {
    const history = await this.deps.history();
    const db = this.deps.db();
    if (this.summary === undefined) {
      const [row] = await getLatestChatSummary.run({ chat_id: this.deps.chatId() }, db);
      this.summary = row ? { throughId: Number(row.through_message_id), content: row.content } : null;
    }
    const cfg = turn.resolved.config;
    const withContext = await this.withPinnedContext(history, cfg.context_limit);
    let prompt = buildPrompt(withContext, this.summary);
    if (!shouldCompact(contextTokens(prompt, history, this.summary), cfg.context_limit, cfg.compression_threshold)) return prompt;
    const plan = compactionPlan(history, this.summary);
    if (!plan) return prompt;
    try {
      const request = summaryRequest(plan.fold, this.summary);
      const r = await callModel({
        resolved: turn.resolved,
        apiKey,
        system: request.system,
        messages: request.messages,
        signal: turn.abort.signal,
        onDelta: () => undefined,
        idleTimeoutMs: this.deps.idleTimeoutMs,
        maxRetries: this.deps.maxRetries,
      });
      if (r.finishReason === 'aborted' || !r.text.trim()) return prompt;
      await insertChatSummary.run(
        {
          chat_id: this.deps.chatId(),
          through_message_id: String(plan.through),
          content: r.text,
          model_config_id: cfg.id,
          input_tokens: String(r.usage.input_tokens),
          output_tokens: String(r.usage.output_tokens),
        },
        db,
      );
      this.summary = { throughId: plan.through, content: r.text };
      this.compactions += 1;
      prompt = buildPrompt(withContext, this.summary);
    } catch (e) {
      console.error(JSON.stringify({ level: 'warn', msg: 'compaction failed; using the full history', chat_id: this.deps.chatId(), error: String(e) }));
    }
    return prompt;
  }

  /**
   * The history with the pinned context as one more system message after the chat's own system messages (the
   * deployment system prompt), so buildPrompt puts it right after them and before any summary. The pinned rows are
   * read once per object life (none for a chat without an agent) and kept until a re-pin.
   */
  private async withPinnedContext(history: Message[], contextLimit: number): Promise<Message[]> {
    let items = this.pinned;
    if (items === undefined) {
      const generation = this.pinnedGeneration;
      items = (await this.deps.hasAgent())
        ? promptContextItems(await getChatPromptContext.run({ chat_id: this.deps.chatId() }, this.deps.db()))
        : [];
      if (generation === this.pinnedGeneration) this.pinned = items;
    }
    const text = renderPromptContext(items, contextLimit);
    if (!text) return history;
    const context: Message = {
      id: 0,
      chat_id: this.deps.chatId(),
      role: 'system',
      content: [{ type: 'text', text }],
      model_config_id: null,
      created_at: new Date(0).toISOString(),
    };
    const system = history.filter((m) => m.role === 'system');
    return [...system, context, ...history.filter((m) => m.role !== 'system')];
  }
}

function emptyUsage() {
  return { input_tokens: 0, output_tokens: 0, total_tokens: 0, reasoning_tokens: 0, cache_read_tokens: 0, cache_creation_tokens: 0 };
}
