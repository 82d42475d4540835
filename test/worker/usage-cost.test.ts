/**
 * Cost arithmetic (exact, in integers) and every provider's usage as our turns see it: each provider package of the
 * AI SDK is driven through its real stream parser by a stubbed fetch that answers the provider's own wire format.
 */
import { createAnthropic } from '@ai-sdk/anthropic';
import { createGoogleGenerativeAI } from '@ai-sdk/google';
import { createOpenAI } from '@ai-sdk/openai';
import { createOpenAICompatible } from '@ai-sdk/openai-compatible';
import { describe, expect, it } from 'vitest';
import { callModel, type ModelResult, type ProviderModel } from '../../durable-objects/llm/model';
import type { ResolvedModel } from '../../functions/core/model-resolve';
import type { TokenUsage } from '../../functions/core/chats';
import { answerCost, costMicros, formatMicros, Pricing, toMicros } from '../../functions/core/usage-cost';

const usage = (u: Partial<TokenUsage>): TokenUsage => ({
  input_tokens: 0,
  output_tokens: 0,
  total_tokens: 0,
  reasoning_tokens: 0,
  cache_read_tokens: 0,
  cache_creation_tokens: 0,
  ...u,
});

describe('money in micro-units', () => {
  it('parses and formats decimal strings exactly', () => {
    expect(toMicros('3')).toBe(3_000_000n);
    expect(toMicros('3.00')).toBe(3_000_000n);
    expect(toMicros('0.1')).toBe(100_000n);
    expect(toMicros('0.000001')).toBe(1n);
    expect(toMicros('999999999999.999999')).toBe(999_999_999_999_999_999n);
    expect(formatMicros(0n)).toBe('0.000000');
    expect(formatMicros(1n)).toBe('0.000001');
    expect(formatMicros(300_000n)).toBe('0.300000');
    expect(formatMicros(12_345_678_901n)).toBe('12345.678901');
    // 0.1 + 0.2 is 0.3 here, not 0.30000000000000004.
    expect(formatMicros(toMicros('0.1') + toMicros('0.2'))).toBe('0.300000');
  });

  it('refuses prices that are not plain decimals with at most 6 decimals', () => {
    for (const bad of ['1e3', '-1', '0.0000001', '1,5', ' 1', '', '.5', '1.', '1234567890', 'NaN']) {
      expect(Pricing.safeParse({ input_per_mtok: bad, output_per_mtok: '1' }).success, bad).toBe(false);
    }
    expect(Pricing.safeParse({ input_per_mtok: '0.15', output_per_mtok: '0.6', extra: '1' }).success).toBe(false);
  });
});

describe('the cost of an answer', () => {
  const p: Pricing = { input_per_mtok: '3.00', output_per_mtok: '15.00' };

  it('is tokens times the price per million, rounded half up to a micro-unit once', () => {
    // 1000 in at 3 µ/token + 500 out at 15 µ/token = 3000 + 7500 µ.
    expect(costMicros(p, usage({ input_tokens: 1000, output_tokens: 500 }))).toBe(10_500n);
    // 7 tokens at 0.15 per million = 1.05 µ → 1 µ; 10 tokens = 1.5 µ → 2 µ (half up); 3 tokens = 0.45 µ → 0.
    const cheap: Pricing = { input_per_mtok: '0.15', output_per_mtok: '0' };
    expect(costMicros(cheap, usage({ input_tokens: 7 }))).toBe(1n);
    expect(costMicros(cheap, usage({ input_tokens: 10 }))).toBe(2n);
    expect(costMicros(cheap, usage({ input_tokens: 3 }))).toBe(0n);
    // The smallest price over a million tokens is exactly one micro-unit.
    expect(costMicros({ input_per_mtok: '0.000001', output_per_mtok: '0' }, usage({ input_tokens: 1_000_000 }))).toBe(1n);
    // Large: 2 billion tokens at 999,999,999.999999 per million stays exact.
    expect(costMicros({ input_per_mtok: '999999999.999999', output_per_mtok: '0' }, usage({ input_tokens: 2_000_000_000 }))).toBe(
      1_999_999_999_999_998_000n,
    );
  });

  it('prices cache reads, cache writes and reasoning apart when given, and falls back otherwise', () => {
    const u = usage({ input_tokens: 1000, cache_read_tokens: 600, cache_creation_tokens: 100, output_tokens: 400, reasoning_tokens: 300 });
    // Fallbacks: everything in at the input price, everything out at the output price.
    expect(costMicros(p, u)).toBe(1000n * 3n + 400n * 15n);
    const full: Pricing = { ...p, cache_read_per_mtok: '0.30', cache_write_per_mtok: '3.75', reasoning_per_mtok: '60' };
    // 300 plain in × 3 + 600 read × 0.3 + 100 written × 3.75 + 100 plain out × 15 + 300 reasoning × 60.
    expect(costMicros(full, u)).toBe(900n + 180n + 375n + 1500n + 18_000n);
    // Inconsistent counts never go negative.
    expect(costMicros(full, usage({ input_tokens: 10, cache_read_tokens: 50, output_tokens: 1, reasoning_tokens: 9 }))).toBe(15n + 60n);
  });

  it('is null when not priced: no pricing, no usage, or usage the provider did not report', () => {
    const u = usage({ input_tokens: 1000 });
    expect(answerCost(null, u, true)).toBeNull();
    expect(answerCost(p, null, true)).toBeNull();
    expect(answerCost(p, u, false)).toBeNull();
    expect(answerCost(p, u, true)).toBe('3000');
    expect(answerCost(p, usage({ input_tokens: Number.NaN, output_tokens: -5 }), true)).toBe('0');
  });
});

/** A stubbed fetch answering `events` as server-sent events (each one `data:` line, with an `event:` when named). */
function sse(events: (object | string)[], named = false): typeof fetch {
  const body = events
    .map((e) => {
      const data = typeof e === 'string' ? e : JSON.stringify(e);
      const type = named && typeof e === 'object' && 'type' in e && typeof e.type === 'string' ? `event: ${e.type}\n` : '';
      return `${type}data: ${data}\n\n`;
    })
    .join('');
  return () => Promise.resolve(new Response(body, { headers: { 'content-type': 'text/event-stream' } }));
}

const resolved: ResolvedModel = {
  config: { id: 'c', provider: 'p', model: 'm', display_name: 'm', context_limit: 1000, compression_threshold: 70, options: {}, pricing: null },
  provider: { id: 'p', provider: 'p', base_url: '', api_key: null },
  requested: true,
  debugRuns: 'off',
  titleModel: { model_config_id: null, enabled: false },
};

async function run(model: ProviderModel): Promise<ModelResult> {
  return await callModel({
    resolved,
    apiKey: 'k',
    system: undefined,
    messages: [{ role: 'user', content: 'hi' }],
    signal: new AbortController().signal,
    onDelta: () => undefined,
    idleTimeoutMs: 5000,
    maxRetries: 0,
    model,
  });
}

describe("providers' usage, as turns record it", () => {
  it('OpenAI (Responses API): input includes cached tokens, output includes reasoning', async () => {
    const fetch = sse([
      { type: 'response.created', response: { id: 'r', created_at: 1, model: 'gpt' } },
      {
        type: 'response.completed',
        response: { usage: { input_tokens: 100, input_tokens_details: { cached_tokens: 60 }, output_tokens: 50, output_tokens_details: { reasoning_tokens: 20 } } },
      },
    ]);
    const r = await run(createOpenAI({ apiKey: 'k', fetch })('gpt'));
    expect(r.usageKnown).toBe(true);
    expect(r.usage).toEqual(usage({ input_tokens: 100, output_tokens: 50, total_tokens: 150, reasoning_tokens: 20, cache_read_tokens: 60 }));
  });

  it("Anthropic: its input, cache write and cache read counts are summed into the input", async () => {
    const fetch = sse(
      [
        { type: 'message_start', message: { id: 'm', model: 'claude', role: 'assistant', usage: { input_tokens: 100, cache_creation_input_tokens: 20, cache_read_input_tokens: 30, output_tokens: 1 } } },
        { type: 'message_delta', delta: { stop_reason: 'end_turn' }, usage: { output_tokens: 50 } },
        { type: 'message_stop' },
      ],
      true,
    );
    const r = await run(createAnthropic({ apiKey: 'k', fetch })('claude'));
    expect(r.usageKnown).toBe(true);
    expect(r.usage).toEqual(usage({ input_tokens: 150, output_tokens: 50, total_tokens: 200, cache_read_tokens: 30, cache_creation_tokens: 20 }));
    // Priced, the 100 plain input tokens are not billed twice.
    const price: Pricing = { input_per_mtok: '3', output_per_mtok: '15', cache_read_per_mtok: '0.3', cache_write_per_mtok: '3.75' };
    expect(costMicros(price, r.usage)).toBe(300n + 9n + 75n + 750n);
  });

  it('Google: thoughts are output tokens (and reasoning), cached content is part of the prompt', async () => {
    const fetch = sse([
      {
        candidates: [{ content: { parts: [{ text: 'hi' }], role: 'model' }, finishReason: 'STOP' }],
        usageMetadata: { promptTokenCount: 100, cachedContentTokenCount: 40, candidatesTokenCount: 30, thoughtsTokenCount: 10, totalTokenCount: 140 },
      },
    ]);
    const r = await run(createGoogleGenerativeAI({ apiKey: 'k', fetch })('gemini'));
    expect(r.usage).toEqual(usage({ input_tokens: 100, output_tokens: 40, total_tokens: 140, reasoning_tokens: 10, cache_read_tokens: 40 }));
  });

  it('OpenRouter and other OpenAI-compatible servers: usage from the last chunk; none at all is flagged', async () => {
    const chunk = (delta: object, finish: string | null) => ({ id: 'x', created: 1, model: 'm', choices: [{ index: 0, delta, finish_reason: finish }] });
    const withUsage = sse([
      chunk({ role: 'assistant', content: 'hi' }, null),
      chunk({}, 'stop'),
      { id: 'x', created: 1, model: 'm', choices: [], usage: { prompt_tokens: 100, completion_tokens: 30, prompt_tokens_details: { cached_tokens: 25 }, completion_tokens_details: { reasoning_tokens: 5 } } },
      '[DONE]',
    ]);
    const build = (fetch: typeof globalThis.fetch) => createOpenAICompatible({ name: 'openrouter', baseURL: 'http://x/v1', apiKey: 'k', includeUsage: true, fetch })('m');
    const r = await run(build(withUsage));
    expect(r.usage).toEqual(usage({ input_tokens: 100, output_tokens: 30, total_tokens: 130, reasoning_tokens: 5, cache_read_tokens: 25 }));
    expect(r.usageKnown).toBe(true);
    const none = await run(build(sse([chunk({ role: 'assistant', content: 'hi' }, null), chunk({}, 'stop'), '[DONE]'])));
    expect(none.usageKnown).toBe(false);
    expect(none.usage).toEqual(usage({}));
    expect(answerCost({ input_per_mtok: '1', output_per_mtok: '1' }, none.usage, none.usageKnown)).toBeNull();
  });
});
