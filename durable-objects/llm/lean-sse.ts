/**
 * The lean path's reading of an OpenAI-compatible chat stream (see lean-compat.ts): server-sent events to the stream
 * parts the AI SDK's openai-compatible model (3.0.x) emits, in one pass. Each event is parsed once with JSON.parse and
 * checked by hand against the shape the SDK's chunk schema accepts (a chunk it would reject becomes the same `error`
 * part), instead of a zod validation per token. Tool-call deltas go through the SDK's own StreamingToolCallTracker,
 * buffered as the SDK buffers them. test/worker/lean-compat.test.ts holds the two to the same outputs.
 */
import { generateId, StreamingToolCallTracker, type StreamingToolCallDelta } from '@ai-sdk/provider-utils';
import type { StreamPart } from './provider-types';

type Usage = Extract<StreamPart, { type: 'finish' }>['usage'];
type FinishReason = Extract<StreamPart, { type: 'finish' }>['finishReason'];
type Obj = Record<string, unknown>;

const isObject = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const nullish = (v: unknown) => v === null || v === undefined;
const optString = (v: unknown) => nullish(v) || typeof v === 'string';
const optNumber = (v: unknown) => nullish(v) || typeof v === 'number';
const num = (v: unknown): number | undefined => (typeof v === 'number' ? v : undefined);

/** The SDK's token usage schema (a loose object of optional numbers). */
function usageOk(u: unknown): boolean {
  if (nullish(u)) return true;
  if (!isObject(u) || !optNumber(u.prompt_tokens) || !optNumber(u.completion_tokens) || !optNumber(u.total_tokens)) return false;
  const p = u.prompt_tokens_details;
  const c = u.completion_tokens_details;
  if (!nullish(p) && (!isObject(p) || !optNumber(p.cached_tokens))) return false;
  return nullish(c) || (isObject(c) && optNumber(c.reasoning_tokens) && optNumber(c.accepted_prediction_tokens) && optNumber(c.rejected_prediction_tokens));
}

function toolCallOk(t: unknown): boolean {
  if (!isObject(t) || !optNumber(t.index) || !optString(t.id) || !isObject(t.function)) return false;
  if (!optString(t.function.name) || !optString(t.function.arguments)) return false;
  const x = t.extra_content;
  return nullish(x) || (isObject(x) && (nullish(x.google) || (isObject(x.google) && optString(x.google.thought_signature))));
}

function deltaOk(d: unknown): boolean {
  if (nullish(d)) return true;
  if (!isObject(d)) return false;
  if (!nullish(d.role) && d.role !== 'assistant' && d.role !== '') return false;
  const c = d.content;
  if (!nullish(c) && typeof c !== 'string' && !(Array.isArray(c) && c.every((p) => isObject(p) && typeof p.type === 'string'))) return false;
  if (!optString(d.reasoning_content) || !optString(d.reasoning)) return false;
  return nullish(d.tool_calls) || (Array.isArray(d.tool_calls) && d.tool_calls.every(toolCallOk));
}

/** Whether the SDK's chunk schema accepts `v` as a chunk (the error shape is checked apart). */
function chunkOk(v: Obj): boolean {
  if (!optString(v.id) || !optNumber(v.created) || !optString(v.model) || !usageOk(v.usage)) return false;
  return Array.isArray(v.choices) && v.choices.every((c) => isObject(c) && deltaOk(c.delta) && optString(c.finish_reason));
}

/** The SDK's default error body, `{ error: { message, type?, param?, code? } }`. */
function errorBody(v: Obj): unknown {
  const e = v.error;
  if (!isObject(e) || typeof e.message !== 'string' || !optString(e.type)) return undefined;
  return nullish(e.code) || typeof e.code === 'string' || typeof e.code === 'number' ? e : undefined;
}

/** A delta's content as the SDK splits it: text, and Mistral-style `thinking` parts as reasoning. */
function contentParts(content: unknown): { type: 'text' | 'reasoning'; text: string }[] {
  if (typeof content === 'string') return content.length > 0 ? [{ type: 'text', text: content }] : [];
  if (!Array.isArray(content)) return [];
  const out: { type: 'text' | 'reasoning'; text: string }[] = [];
  for (const part of content) {
    if (!isObject(part)) continue;
    if (part.type === 'text' && typeof part.text === 'string') {
      if (part.text.length > 0) out.push({ type: 'text', text: part.text });
    } else if (part.type === 'thinking' && Array.isArray(part.thinking)) {
      const text = part.thinking.map((c) => (isObject(c) && c.type === 'text' && typeof c.text === 'string' ? c.text : '')).join('');
      if (text.length > 0) out.push({ type: 'reasoning', text });
    }
  }
  return out;
}

/** The SDK's conversion of an OpenAI-compatible `usage` object. */
function usageOf(u: unknown): Usage {
  if (!isObject(u)) {
    return { inputTokens: { total: undefined, noCache: undefined, cacheRead: undefined, cacheWrite: undefined }, outputTokens: { total: undefined, text: undefined, reasoning: undefined } };
  }
  const prompt = num(u.prompt_tokens) ?? 0;
  const completion = num(u.completion_tokens) ?? 0;
  const cached = (isObject(u.prompt_tokens_details) ? num(u.prompt_tokens_details.cached_tokens) : undefined) ?? 0;
  const reasoning = (isObject(u.completion_tokens_details) ? num(u.completion_tokens_details.reasoning_tokens) : undefined) ?? 0;
  return {
    inputTokens: { total: prompt, noCache: prompt - cached, cacheRead: cached, cacheWrite: undefined },
    outputTokens: { total: completion, text: Math.max(0, completion - reasoning), reasoning },
    // Parsed from JSON text, so JSON all the way down.
    raw: u as NonNullable<Usage['raw']>,
  };
}

function finishOf(raw: string, refusal: boolean): FinishReason['unified'] {
  switch (raw) {
    case 'stop':
      return refusal ? 'content-filter' : 'stop';
    case 'length':
      return 'length';
    case 'content_filter':
      return 'content-filter';
    case 'function_call':
    case 'tool_calls':
      return 'tool-calls';
    default:
      return 'other';
  }
}

/** A stream's state while its events are read: what the SDK's transform keeps between chunks. */
class Reading {
  readonly out: StreamPart[] = [];
  private text = false;
  private reasoning = false;
  private refusal = false;
  private finishReason: FinishReason | undefined;
  private rawFinish: string | undefined;
  private usage: unknown;
  private tracker: StreamingToolCallTracker | undefined;
  /** Tool calls seen by index before their name, and the indices already handed to the tracker (as the SDK does). */
  private readonly pending = new Map<number, { id: string | null; args: string; extra: unknown }>();
  private readonly forwarded = new Set<number>();

  constructor(private readonly providerName: string) {}

  event(data: string): void {
    if (data === '[DONE]') return;
    let v: unknown;
    try {
      v = JSON.parse(data);
    } catch (e) {
      this.fail(e);
      return;
    }
    if (!isObject(v)) {
      this.fail(new Error('The provider sent an event that is not an object.'));
      return;
    }
    if (!chunkOk(v)) {
      const error = errorBody(v);
      this.fail(error ?? new Error('The provider sent a chunk of an unexpected shape.'));
      return;
    }
    // The SDK's schema passes a chunk that also carries `error`, and its transform then treats it as the error.
    if ('error' in v) {
      this.fail(v.error);
      return;
    }
    if (v.usage != null) this.usage = v.usage;
    const choices = v.choices as unknown[];
    const choice = choices[0] as Obj | undefined;
    if (typeof choice?.finish_reason === 'string') this.rawFinish = choice.finish_reason;
    const delta = choice?.delta;
    if (!isObject(delta)) return;
    const r = delta.reasoning_content ?? delta.reasoning;
    if (typeof r === 'string' && r.length > 0) this.think(r);
    for (const p of contentParts(delta.content)) {
      if (p.type === 'reasoning') this.think(p.text);
      else this.say(p.text);
    }
    if (typeof delta.refusal === 'string' && delta.refusal.length > 0) {
      this.refusal = true;
      this.say(delta.refusal);
    }
    if (Array.isArray(delta.tool_calls) && delta.tool_calls.length > 0) {
      this.endReasoning();
      for (const t of delta.tool_calls as StreamingToolCallDelta[]) this.toolDelta(t);
    }
  }

  /** The end of the body: close what is open, finish the tool calls, and the `finish` part. */
  end(): void {
    this.endReasoning();
    if (this.text) this.out.push({ type: 'text-end', id: 'txt-0' });
    this.text = false;
    for (const [index, p] of this.pending) this.track().processDelta({ index, id: p.id, function: { arguments: p.args } });
    this.pending.clear();
    this.tracker?.flush();
    if (this.rawFinish !== undefined) this.finishReason = { unified: finishOf(this.rawFinish, this.refusal), raw: this.rawFinish };
    if (this.finishReason === undefined) {
      this.finishReason = { unified: 'error', raw: undefined };
      this.out.push({ type: 'error', error: new Error('Response stream ended without a finish reason.') });
    }
    this.out.push({ type: 'finish', finishReason: this.finishReason, usage: usageOf(this.usage), providerMetadata: { [this.providerName]: {} } });
  }

  private fail(error: unknown): void {
    this.finishReason = { unified: 'error', raw: undefined };
    this.rawFinish = undefined;
    this.out.push({ type: 'error', error });
  }

  private think(t: string): void {
    if (this.text) {
      this.out.push({ type: 'text-end', id: 'txt-0' });
      this.text = false;
    }
    if (!this.reasoning) this.out.push({ type: 'reasoning-start', id: 'reasoning-0' });
    this.reasoning = true;
    this.out.push({ type: 'reasoning-delta', id: 'reasoning-0', delta: t });
  }

  private say(t: string): void {
    this.endReasoning();
    if (!this.text) this.out.push({ type: 'text-start', id: 'txt-0' });
    this.text = true;
    this.out.push({ type: 'text-delta', id: 'txt-0', delta: t });
  }

  private endReasoning(): void {
    if (this.reasoning) this.out.push({ type: 'reasoning-end', id: 'reasoning-0' });
    this.reasoning = false;
  }

  private track(): StreamingToolCallTracker {
    this.tracker ??= new StreamingToolCallTracker(
      {
        enqueue: (p) => {
          if (p) this.out.push(p);
        },
      },
      {
        generateId,
        extractMetadata: (d: StreamingToolCallDelta & { extra_content?: { google?: { thought_signature?: string | null } | null } | null }) => {
          const signature = d.extra_content?.google?.thought_signature;
          return signature ? { [this.providerName]: { thoughtSignature: signature } } : undefined;
        },
        buildToolCallProviderMetadata: (m) => m,
      },
    );
    return this.tracker;
  }

  /** The SDK's `processToolCallDelta`: a call is held by index until its name arrives, then handed over whole. */
  private toolDelta(t: StreamingToolCallDelta & { extra_content?: unknown }): void {
    const index = t.index;
    if (index == null || this.forwarded.has(index)) {
      this.track().processDelta(t);
      return;
    }
    let p = this.pending.get(index);
    if (!p) {
      p = { id: t.id ?? null, args: '', extra: t.extra_content ?? null };
      this.pending.set(index, p);
    } else {
      if (p.id == null && t.id != null) p.id = t.id;
      if (p.extra == null && t.extra_content != null) p.extra = t.extra_content;
    }
    if (t.function?.arguments != null) p.args += t.function.arguments;
    const name = t.function?.name;
    if (name != null) {
      this.track().processDelta({ index, id: p.id, function: { name, arguments: p.args }, extra_content: p.extra ?? undefined } as StreamingToolCallDelta);
      this.pending.delete(index);
      this.forwarded.add(index);
    }
  }
}

/** The stream parts of an SSE body, read one network chunk at a time. */
export function leanEvents(body: ReadableStream<Uint8Array>, providerName: string): ReadableStream<StreamPart> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  const reading = new Reading(providerName);
  let buffered = '';
  let done = false;
  /** The data lines of the event being read: an event ends at a blank line, its lines joined by newlines (as the SDK's parser). */
  let data: string[] = [];
  const lines = (chunk: string) => {
    buffered += chunk;
    for (let nl = buffered.indexOf('\n'); nl >= 0; nl = buffered.indexOf('\n')) {
      const line = buffered.slice(0, nl).replace(/\r$/, '');
      buffered = buffered.slice(nl + 1);
      if (line === '') {
        if (data.length > 0) reading.event(data.join('\n'));
        data = [];
      } else if (line.startsWith('data:')) data.push(line.slice(line[5] === ' ' ? 6 : 5));
    }
  };
  return new ReadableStream<StreamPart>({
    start(controller) {
      controller.enqueue({ type: 'stream-start', warnings: [] });
    },
    async pull(controller) {
      while (reading.out.length === 0 && !done) {
        const r = await reader.read();
        if (r.done) {
          // An event the body did not end with a blank line is dropped, as the SDK's parser drops it.
          lines(decoder.decode());
          reading.end();
          done = true;
        } else lines(decoder.decode(r.value, { stream: true }));
      }
      for (const p of reading.out.splice(0)) controller.enqueue(p);
      if (done) controller.close();
    },
    cancel(reason) {
      return reader.cancel(reason);
    },
  });
}
