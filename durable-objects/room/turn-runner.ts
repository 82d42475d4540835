/**
 * Runs a turn's calls: a step (the prompt from the history, the pinned context and the compaction summary, compacting
 * first when the context has reached the model's threshold; the model call with the chat's tools; then the tools it
 * asked for), or tool calls the chat owner approved. It keeps what it read for later turns (the summary, the pinned
 * context) and never writes a call's outcome: the room does, under its lock, and starts the next step.
 */
import { z } from 'zod';
import { getChatPromptContext } from '../../sql/generated/chat_context.queries';
import { getLatestChatSummary, insertChatSummary } from '../../sql/generated/chat_summaries.queries';
import type { Db } from '../../functions/core/db';
import { keyRing } from '../../functions/core/keyring';
import { log } from '../../functions/core/log';
import { buildPrompt, compactionPlan, contextTokens, shouldCompact, summaryRequest, type Prompt, type Summary } from '../llm/compaction';
import { callModel, ModelError, newTrace, type CallTrace, type ModelResult } from '../llm/model';
import { promptContextItems, renderPromptContext, type PromptContextItem } from './pinned-context';
import { DEFAULT_MAX_STEPS, sealBinding, type ResolvedModel } from '../../functions/core/model-resolve';
import type { Message, Part, PendingToolCall } from '../../functions/core/chats';
import { Toolbox, type PinnedResource, type ToolSet } from './toolbox';
import { fileParts } from '../llm/file-input';
import { getChatFileKeys } from '../../sql/generated/files.queries';
import type { CallOutcome, Turn } from './turn';
import { maxStepsNote, stepsSince, toolCallParts } from './tool-steps';
import { recordCall, type DebugRunEntry, type TurnRecord } from './turn-record';
import { inSpan, recordAttributes } from './trace-span';

interface Recorded {
  record: TurnRecord;
  debug: DebugRunEntry | null;
}

/** A model call that failed, with its record (so the outcome carries it once). */
class RecordedFailure extends Error {
  readonly record: TurnRecord;
  readonly debug: DebugRunEntry | null;
  constructor(
    readonly error: unknown,
    r: Recorded,
  ) {
    super('model call failed');
    this.record = r.record;
    this.debug = r.debug;
  }
}

const outcomeParts = (o: CallOutcome): { result: ModelResult | null; failure: ModelError | null } => ({ result: o.result, failure: o.failure });

/** The values of the turn's MCP servers' headers: redacted from its debug runs wherever they appear. */
async function headerSecrets(tools: ToolSet): Promise<string[]> {
  const endpoints = new Set([...tools.tools.values()].flatMap((t) => (t.endpoint ? [t.endpoint] : [])));
  const out: string[] = [];
  for (const ep of endpoints) {
    try {
      out.push(...Object.values(await ep.headers()));
    } catch {
      // Headers that cannot be opened are never sent either.
    }
  }
  return out;
}

export interface RunnerDeps {
  chatId: () => string;
  db: () => Db;
  encryptionKey: string;
  idleTimeoutMs: number;
  maxRetries: number;
  toolbox: Toolbox;
  /** Chat files' bytes (R2). */
  files: R2Bucket;
}

/** Where a turn's calls hand what they produce, and read the history they answer. */
export interface TurnSink {
  /** A part of the step in progress: a delta (assistant text or reasoning), a tool call, or a tool result. */
  emit(turn: Turn, role: 'assistant' | 'tool', part: Part): void;
  /** The chat's live history as the turn sees it. */
  history(turn: Turn): Promise<Message[]>;
}

const PinnedRow = z.object({ source: z.string(), body_kind: z.string(), body: z.unknown() });

interface Pinned {
  items: PromptContextItem[];
  servers: PinnedResource[];
}

export class TurnRunner {
  /** The newest compaction summary; undefined until read once (then kept current here). */
  private summary: Summary | null | undefined = undefined;
  /** The pinned instruction files, skills and MCP servers; undefined until read once (dropped on re-pin). */
  private pinned: Pinned | undefined = undefined;
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
    if (!hasAgent) this.pinned = { items: [], servers: [] };
  }

  forgetPinned(): void {
    this.pinned = undefined;
    this.pinnedGeneration += 1;
  }

  /**
   * A step of a turn: the model call with the chat's tools, then the tools it asked for (see Toolbox.runStep). With
   * `max_steps` model calls made since the user's message, no call is made: the outcome carries the note that ends the
   * turn. Never rejects: failures are classified into a `ModelError`.
   */
  async run(turn: Turn, sink: TurnSink): Promise<CallOutcome> {
    const cfg = turn.resolved.config;
    const attrs = { 'chat.id': this.deps.chatId(), 'turn.id': turn.id, 'model_config.id': cfg.id, 'llm.provider': cfg.provider, 'llm.model': cfg.model };
    return await inSpan('chat.turn_step', attrs, async (set) => {
      const outcome = await this.step(turn, sink);
      if (outcome.record) set(recordAttributes(outcome.record));
      return outcome;
    });
  }

  private async step(turn: Turn, sink: TurnSink): Promise<CallOutcome> {
    const trace = newTrace(turn.resolved.debugRuns !== 'off');
    const secrets: string[] = [];
    let called = false;
    let recorded: Recorded | null = null;
    try {
      const history = await sink.history(turn);
      const step = stepsSince(history);
      const maxSteps = turn.resolved.config.options.max_steps ?? DEFAULT_MAX_STEPS;
      if (step >= maxSteps) return { result: null, failure: null, note: maxStepsNote(maxSteps) };
      called = true;
      const apiKey = await this.openApiKey(turn.resolved);
      if (apiKey !== null) secrets.push(apiKey);
      const prompt = await this.promptFor(turn, apiKey, history);
      const tools = await this.deps.toolbox.forTurn(turn, (await this.loadPinned(turn.hasAgent)).servers);
      if (trace.capture) secrets.push(...(await headerSecrets(tools)));
      const result = await this.recorded(turn, trace, secrets, callModel({
        resolved: turn.resolved,
        apiKey,
        system: prompt.system,
        messages: prompt.messages,
        signal: turn.abort.signal,
        onDelta: (d) => {
          sink.emit(turn, 'assistant', { type: d.type, text: d.text });
        },
        idleTimeoutMs: this.deps.idleTimeoutMs,
        maxRetries: this.deps.maxRetries,
        tools: Toolbox.forModel(tools),
        trace,
      }));
      const ended: Recorded = { record: result.record, debug: result.debug };
      recorded = ended;
      if (result.value.toolCalls.length === 0) return { result: result.value, failure: null, ...ended };
      const { calls, invalid } = toolCallParts(result.value.toolCalls, history);
      for (const c of calls) sink.emit(turn, 'assistant', c);
      if (result.value.finishReason === 'aborted') return { result: result.value, failure: null, tools: { step, calls, results: [], pending: [] }, ...ended };
      const ran = await this.deps.toolbox.runStep(calls, tools, invalid, turn.abort.signal, (r) => {
        sink.emit(turn, 'tool', r);
      });
      return { result: result.value, failure: null, tools: { step, calls, ...ran }, ...ended };
    } catch (e) {
      const outcome = this.failed(turn, e);
      if (e instanceof RecordedFailure) return { ...outcome, record: e.record, debug: e.debug };
      // After the model call (its tools failed): its record. Before it (the key, the prompt, the tools): this failure's.
      if (recorded) return { ...outcome, ...recorded };
      if (called) return { ...outcome, ...recordCall({ turn, chatId: this.deps.chatId(), trace, endedAt: Date.now(), ...outcomeParts(outcome), secrets }) };
      return outcome;
    }
  }

  /** The model call, recorded when it ends (a failure is rethrown carrying its record). */
  private async recorded(turn: Turn, trace: CallTrace, secrets: readonly string[], call: Promise<ModelResult>): Promise<{ value: ModelResult } & Recorded> {
    try {
      const value = await call;
      return { value, ...recordCall({ turn, chatId: this.deps.chatId(), trace, endedAt: Date.now(), result: value, failure: null, secrets }) };
    } catch (e) {
      const outcome = this.failed(turn, e);
      throw new RecordedFailure(e, recordCall({ turn, chatId: this.deps.chatId(), trace, endedAt: Date.now(), ...outcomeParts(outcome), secrets }));
    }
  }

  /** A tool call the chat owner approved, run; its result is the outcome. */
  async runApproved(turn: Turn, call: PendingToolCall, sink: TurnSink): Promise<CallOutcome> {
    try {
      const tools = await this.deps.toolbox.forTurn(turn, (await this.loadPinned(turn.hasAgent)).servers);
      const r = await this.deps.toolbox.runApproved(call, tools, turn.abort.signal);
      sink.emit(turn, 'tool', r);
      return { result: null, failure: null, tools: { step: 0, calls: [], results: [r], pending: [] } };
    } catch (e) {
      return this.failed(turn, e);
    }
  }

  /** The pinned MCP servers of the chat (read once per object life with the rest of its pinned context). */
  async pinnedServers(hasAgent: boolean): Promise<PinnedResource[]> {
    return (await this.loadPinned(hasAgent)).servers;
  }

  private failed(turn: Turn, e: unknown): CallOutcome {
    if (e instanceof RecordedFailure) return this.failed(turn, e.error);
    if (e instanceof ModelError) return { result: null, failure: e };
    if (turn.abort.signal.aborted) return { result: aborted(), failure: null };
    log('error', 'turn failed', { chat_id: this.deps.chatId(), error: String(e) });
    return { result: null, failure: new ModelError('network', 'The turn failed unexpectedly.') };
  }

  /** The provider's API key for a call (the title job's too), opened just for it. */
  async openApiKey(resolved: ResolvedModel): Promise<string | null> {
    const sealed = resolved.provider.api_key;
    if (!sealed) return null;
    try {
      const ring = await keyRing(this.deps.encryptionKey);
      return await ring.open(sealed, sealBinding(resolved.provider.id));
    } catch (e) {
      log('error', 'cannot open provider key', { provider: resolved.provider.provider, error: String(e) });
      throw new ModelError('config', "The provider's API key cannot be decrypted on this deployment.");
    }
  }

  /**
   * The prompt for a turn; compacts first when the context has reached the model's threshold. A failed compaction
   * is logged and the turn goes on with the full history.
   */
  private async promptFor(turn: Turn, apiKey: string | null, history: Message[]): Promise<Prompt> {
    const db = this.deps.db();
    if (this.summary === undefined) {
      const [row] = await getLatestChatSummary.run({ chat_id: this.deps.chatId() }, db);
      this.summary = row ? { throughId: Number(row.through_message_id), content: row.content } : null;
    }
    const cfg = turn.resolved.config;
    const withContext = await this.withPinnedContext(history, cfg.context_limit, turn.hasAgent);
    const files = await this.fileBytes(turn, history);
    let prompt = buildPrompt(withContext, this.summary, files);
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
      prompt = buildPrompt(withContext, this.summary, files);
    } catch (e) {
      log('warn', 'compaction failed; using the full history', { chat_id: this.deps.chatId(), error: String(e) });
    }
    return prompt;
  }

  /**
   * The bytes of the files the prompt sends (user messages after the summary), from R2: read once per turn (its tool
   * steps reuse them), never kept in the message cache. No statement and no R2 read for a chat without files.
   */
  private async fileBytes(turn: Turn, history: readonly Message[]): Promise<Map<string, Uint8Array>> {
    const through = this.summary?.throughId ?? 0;
    const wanted = [...new Set(history.filter((m) => m.role === 'user' && m.id > through).flatMap((m) => fileParts(m).map((f) => f.file_id)))];
    turn.files ??= new Map();
    const have = turn.files;
    const missing = wanted.filter((id) => !have.has(id));
    if (missing.length === 0) return have;
    const rows = await getChatFileKeys.run({ ids: missing, chat_id: this.deps.chatId() }, this.deps.db());
    await Promise.all(
      rows.map(async (r) => {
        const object = await this.deps.files.get(r.r2_key);
        if (object) have.set(r.id, new Uint8Array(await object.arrayBuffer()));
        else log('error', 'a file row has no bytes', { chat_id: this.deps.chatId(), file_id: r.id });
      }),
    );
    return have;
  }

  /**
   * The history with the pinned context as one more system message after the chat's own system messages (the
   * deployment system prompt), so buildPrompt puts it right after them and before any summary. The pinned rows are
   * read once per object life (none for a chat without an agent) and kept until a re-pin.
   */
  private async withPinnedContext(history: Message[], contextLimit: number, hasAgent: boolean): Promise<Message[]> {
    const text = renderPromptContext((await this.loadPinned(hasAgent)).items, contextLimit);
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

  /** The pinned rows, read once per object life (none for a chat without an agent) and kept until a re-pin. */
  private async loadPinned(hasAgent: boolean): Promise<Pinned> {
    if (this.pinned) return this.pinned;
    const generation = this.pinnedGeneration;
    const rows = hasAgent ? (await getChatPromptContext.run({ chat_id: this.deps.chatId() }, this.deps.db())).map((r) => PinnedRow.parse(r)) : [];
    const pinned: Pinned = {
      items: promptContextItems(rows.filter((r) => r.body_kind !== 'mcp_server')),
      servers: rows.filter((r) => r.body_kind === 'mcp_server').map((r) => ({ source: r.source, body: r.body })),
    };
    if (generation === this.pinnedGeneration) this.pinned = pinned;
    return pinned;
  }
}

function aborted(): ModelResult {
  return { text: '', reasoning: '', usage: emptyUsage(), usageKnown: false, finishReason: 'aborted', toolCalls: [] };
}

function emptyUsage() {
  return { input_tokens: 0, output_tokens: 0, total_tokens: 0, reasoning_tokens: 0, cache_read_tokens: 0, cache_creation_tokens: 0 };
}
