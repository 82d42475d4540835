/**
 * Titles written by a model: after a chat's first answer, when its title is still the first message's first words, the
 * object asks the title model (deployment setting `title_model`, null: the chat's own model; read with the chat's model
 * resolution, so a change reaches objects within its cache's 30 s) for a short title. A background job of the object:
 * it starts once the turn's end is written and published, makes its model call and its one statement outside the
 * chat's lock (the lock is taken only to show the title: the row in memory, the `title` event), and never delays the
 * turn's end or the next queued message. Its tokens and cost go to the usage ledger in
 * the statement that stores the title (`SetModelTitle`), and to the owner's spend meter.
 *
 * Kept in object storage (`title`): the first exchange while a title is pending, so a job cut short by an eviction is
 * tried again, once, by the next life of the object; `done` once it succeeded or failed (a failure leaves the title,
 * and is logged once). Only the first answer of a chat ever asks: after that the key says `done`.
 */
import { z } from 'zod';
import type { Db } from '../../functions/core/db';
import { log } from '../../functions/core/log';
import { resolveModelCached, type ResolvedModel } from '../../functions/core/model-resolve';
import { answerCost } from '../../functions/core/usage-cost';
import { textOf, type Message } from '../../functions/core/chats';
import { setModelTitle } from '../../sql/generated/conversation_tools.queries';
import { callModel, ModelError } from '../llm/model';
import type { Budget } from './budget';
import type { ChatState } from './chat-state';
import type { Mutex } from './mutex';
import type { StreamHub } from './stream-hub';

/** The title model's instructions. The mock LLM (scripts/lib/mock-llm-plan.mjs) knows a title request by them. */
export const TITLE_SYSTEM =
  'You write the title of a chat. Answer with the title only: at most 8 words, in the language of the chat, no quotes, no final period.';
const TITLE_TIMEOUT_MS = 30_000;
/** What of the first exchange the title model reads. */
const EXCERPT_CHARS = 2_000;
const MAX_TITLE_CHARS = 256;
const MAX_TITLE_WORDS = 12;
/** A pending title is tried this many times (the first try, and once more after an eviction). */
const MAX_ATTEMPTS = 2;

const KV_KEY = 'title';
const Pending = z.object({ attempts: z.number().int(), configId: z.string().nullable(), user: z.string(), answer: z.string() });
type Pending = z.infer<typeof Pending>;

export interface TitlesDeps {
  chatId: () => string;
  ctx: DurableObjectState;
  db: () => Db;
  lock: Mutex;
  state: ChatState;
  hub: StreamHub;
  budget: Budget;
  openApiKey: (resolved: ResolvedModel) => Promise<string | null>;
  idleTimeoutMs: number;
}

/** A model's answer as a title: its first line, without quotes or a final period, at most 12 words and 256 characters. */
export function cleanTitle(text: string): string {
  const line = (text.split('\n').find((l) => l.trim()) ?? '').trim();
  const unquoted = line.replace(/^(?:title:\s*)/i, '').replace(/^["'“”‘’`*]+|["'“”‘’`*]+$/g, '').trim().replace(/[.。]+$/, '');
  return unquoted.split(/\s+/).filter(Boolean).slice(0, MAX_TITLE_WORDS).join(' ').slice(0, MAX_TITLE_CHARS).trim();
}

export class Titles {
  /** The title job running now, if any. */
  private running: Promise<void> | null = null;

  constructor(private readonly deps: TitlesDeps) {}

  /** Resolves once no title job runs (`idle()`: tests and the scale test wait for it). */
  async settled(): Promise<void> {
    while (this.running) await this.running;
  }

  /**
   * A turn's answer was written and published (under the lock): the first answer of a chat whose title is its first
   * words starts the title job. Reads only memory and the object's storage: a turn gains no statement here.
   */
  afterAnswer(finalText: string, modelConfigId: string | null): void {
    const { state, ctx } = this.deps;
    if (state.titleSource !== 'first_words' || ctx.storage.kv.get(KV_KEY) !== undefined) return;
    const user = (state.cache.history() ?? []).find((m: Message) => m.role === 'user');
    this.launch({ attempts: 0, configId: modelConfigId, user: user ? textOf(user.content) : '', answer: finalText });
  }

  /** A new life of the object: a title left pending by the last one (an eviction) is tried again, once. */
  resume(): void {
    const raw = this.deps.ctx.storage.kv.get(KV_KEY);
    if (typeof raw !== 'string' || raw === 'done') return;
    let pending: Pending | null = null;
    try {
      const parsed = Pending.safeParse(JSON.parse(raw));
      pending = parsed.success ? parsed.data : null;
    } catch {
      pending = null;
    }
    if (pending && pending.attempts < MAX_ATTEMPTS && this.deps.state.titleSource === 'first_words') this.launch(pending);
    else this.deps.ctx.storage.kv.put(KV_KEY, 'done');
  }

  private launch(p: Pending): void {
    const next = { ...p, attempts: p.attempts + 1 };
    this.deps.ctx.storage.kv.put(KV_KEY, JSON.stringify(next));
    const job = this.run(next).finally(() => {
      if (this.running === job) this.running = null;
    });
    this.running = job;
    this.deps.ctx.waitUntil(job);
  }

  private async run(p: Pending): Promise<void> {
    const { chatId, ctx, db } = this.deps;
    try {
      // The setting rides on the chat's model resolution (cached: no statement when the turn just resolved it).
      const chatModel = await resolveModelCached(db(), p.configId);
      if (!chatModel.titleModel.enabled) return;
      const resolved = await this.model(chatModel.titleModel.model_config_id, chatModel);
      const result = await callModel({
        resolved,
        apiKey: await this.deps.openApiKey(resolved),
        system: TITLE_SYSTEM,
        messages: [{ role: 'user', content: [{ type: 'text', text: prompt(p) }] }],
        signal: AbortSignal.timeout(TITLE_TIMEOUT_MS),
        onDelta: () => undefined,
        idleTimeoutMs: this.deps.idleTimeoutMs,
        maxRetries: 0,
      });
      const title = result.finishReason === 'aborted' ? '' : cleanTitle(result.text);
      const cost = answerCost(resolved.config.pricing, result.usage, result.usageKnown);
      const [row] = await setModelTitle.run(
        {
          chat_id: chatId(),
          // An empty answer changes nothing (the title stays), but its tokens were spent.
          title: title === '' ? null : title,
          model_config_id: resolved.config.id,
          input_tokens: String(result.usage.input_tokens),
          output_tokens: String(result.usage.output_tokens),
          reasoning_tokens: String(result.usage.reasoning_tokens),
          cache_read_tokens: String(result.usage.cache_read_tokens),
          cache_creation_tokens: String(result.usage.cache_creation_tokens),
          cost_micros: cost,
        },
        db(),
      );
      if (title === '') log('warn', 'the title model answered no title; the title stays', { chat_id: chatId(), model_config_id: resolved.config.id });
      await this.show(row?.title ?? null, cost, row?.day ?? null);
    } catch (e) {
      // The title stays as it is; one line, with the failure's kind (never a provider's text).
      const kind = e instanceof ModelError ? e.kind : 'internal';
      log('warn', 'the title model failed; the title stays', { chat_id: chatId(), kind, error: e instanceof ModelError ? e.message : String(e) });
    } finally {
      if (!this.deps.state.gone) ctx.storage.kv.put(KV_KEY, 'done');
    }
  }

  /** The title model: the deployment's when it is usable, else the chat's own (when that is gone too, the default). */
  private async model(titleConfigId: string | null, chatModel: ResolvedModel): Promise<ResolvedModel> {
    if (titleConfigId !== null) {
      const r = await resolveModelCached(this.deps.db(), titleConfigId);
      if (r.requested) return r;
    }
    return chatModel;
  }

  /** Under the lock, briefly: the row in memory takes the title, sockets get the `title` event, the meter the cost. */
  private async show(title: string | null, cost: string | null, day: string | null): Promise<void> {
    const { state, hub, chatId, budget } = this.deps;
    await this.deps.lock.run(() => {
      if (state.gone) return Promise.resolve(null);
      const ownerId = state.loaded?.owner_id ?? null;
      if (title !== null) {
        state.titleSource = 'model';
        if (state.loaded) state.patch({ title });
        hub.publish([{ type: 'title', chat_id: chatId(), title }]);
      }
      if (cost !== null && day !== null && ownerId !== null) budget.charged(day, cost);
      return Promise.resolve(ownerId);
    }).then(async (ownerId) => {
      if (ownerId !== null) await budget.flush(ownerId);
    });
  }
}

/** The title model's request: the first exchange, cut to a bounded excerpt. */
function prompt(p: Pending): string {
  const cut = (s: string) => (s.length > EXCERPT_CHARS ? `${s.slice(0, EXCERPT_CHARS)}…` : s);
  return `Write a title for this chat.\n\nUser: ${cut(p.user)}\n\nAssistant: ${cut(p.answer)}`;
}
