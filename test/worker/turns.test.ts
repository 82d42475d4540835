import { env } from 'cloudflare:workers';
import { MockLanguageModelV4 } from 'ai/test';
import { APICallError } from 'ai';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { KeyRing } from '../../functions/core/keyring';
import { callModel, callSettings, classify, languageModel, retryDelayMs, toUsage } from '../../durable-objects/llm/model';
import { toPrompt } from '../../durable-objects/llm/prompt';
import { createProvider } from '../../functions/services/chat-models';
import type { ResolvedModel } from '../../functions/core/model-resolve';
import { call, makeUser, messagesOf, mockGate, roomOf, sdk, streamOf, testDb, testEnv, textOf, watch, within } from './helpers';

const Recorded = z.array(
  z
    .object({
      headers: z.record(z.string(), z.unknown()),
      body: z.looseObject({ messages: z.array(z.object({ role: z.string(), content: z.unknown() }).loose()) }),
    })
    .loose(),
);
async function recorded(marker: string) {
  const all = Recorded.parse(await (await fetch(`${testEnv.MOCK_LLM_URL}/__mock/requests`)).json());
  return all.filter((r) => JSON.stringify(r.body.messages).includes(marker));
}

async function config(fields: { model?: string; context_limit?: number; compression_threshold?: number; options?: object; provider?: string }) {
  const db = testDb();
  const r = await db.query(
    `INSERT INTO chat_model_configs (provider, model, context_limit, compression_threshold, options)
     VALUES ($1, $2, $3, $4, $5::jsonb) RETURNING id`,
    [
      fields.provider ?? 'openai-compat',
      fields.model ?? 'mock-echo',
      fields.context_limit ?? 100_000,
      fields.compression_threshold ?? 70,
      JSON.stringify(fields.options ?? {}),
    ],
  );
  await db.close();
  return z.object({ id: z.string() }).parse(r.rows[0]).id;
}

async function chatWith(token: string, content: string, modelConfigId: string) {
  const chat = await sdk(token).createChat({ content, model_config_id: modelConfigId });
  await roomOf(chat.id).idle();
  return chat;
}

async function send(chatId: string, token: string, content: string) {
  const r = await call('POST', `/api/v2/chats/${chatId}/messages`, { token, body: { content } });
  expect(r.status, r.text).toBe(201);
  return await roomOf(chatId).idle();
}

describe('compaction', () => {
  it('summarises older history when the context reaches the threshold, and the model then receives the summary', async () => {
    const u = await makeUser();
    const cfg = await config({ context_limit: 60, compression_threshold: 50 });
    const tag = crypto.randomUUID().slice(0, 8);
    const chat = await chatWith(u.token, `first ${tag} message with some words to take up room in the context`, cfg);
    expect(await send(chat.id, u.token, `second ${tag}`)).toBe('waiting');

    const reqs = await recorded(tag);
    const isSummary = (r: (typeof reqs)[number]) => String(r.body.messages[0]?.content).startsWith('You compress chat transcripts');
    const summarise = reqs.filter(isSummary);
    expect(summarise).toHaveLength(1);
    const last = reqs.at(-1);
    if (!last) throw new Error('no request');
    // The final call carries the summary in the system prompt and only the newest user message.
    expect(last.body.messages.map((m) => m.role)).toEqual(['system', 'user']);
    expect(String(last.body.messages[0]?.content)).toContain('Summary of the earlier conversation:');
    expect(last.body.messages[1]?.content).toBe(`second ${tag}`);
    expect((await roomOf(chat.id).stats()).compactions).toBe(1);
    // History itself is untouched.
    expect((await messagesOf(chat.id, u.token)).map((m) => m.role)).toEqual(['user', 'assistant', 'user', 'assistant']);
    const db = testDb();
    const rows = await db.query('SELECT through_message_id::int AS t FROM chat_summaries WHERE chat_id = $1', [chat.id]);
    await db.close();
    expect(rows.rows).toHaveLength(1);
  });

  it('never compacts at threshold 100', async () => {
    const u = await makeUser();
    const cfg = await config({ context_limit: 10, compression_threshold: 100 });
    const tag = crypto.randomUUID().slice(0, 8);
    const chat = await chatWith(u.token, `first ${tag} long enough to exceed a tiny context limit many times over`, cfg);
    await send(chat.id, u.token, `second ${tag}`);
    const reqs = await recorded(tag);
    expect(reqs.some((r) => String(r.body.messages[0]?.content).startsWith('You compress chat transcripts'))).toBe(false);
    expect(reqs.at(-1)?.body.messages.map((m) => m.role)).toEqual(['user', 'assistant', 'user']);
  });
});

describe('model calls', () => {
  it('passes model options through to the provider', async () => {
    const u = await makeUser();
    const cfg = await config({
      options: { temperature: 0.3, max_output_tokens: 64, top_p: 0.9, presence_penalty: 0.5, frequency_penalty: 0.25 },
    });
    const tag = crypto.randomUUID().slice(0, 8);
    await chatWith(u.token, `options ${tag}`, cfg);
    const [req] = await recorded(tag);
    expect(req?.body).toMatchObject({ temperature: 0.3, max_tokens: 64, top_p: 0.9, presence_penalty: 0.5, frequency_penalty: 0.25, stream: true });
  });

  it('streams reasoning parts and stores them before the text', async () => {
    const u = await makeUser();
    const gate = mockGate();
    const content = `think [[mock reasoning="step one step two"]] ${gate.directive(1)}`;
    const chat = await sdk(u.token).createChat({ content });
    await gate.waiting(1);
    const s = streamOf(chat.id, u.token);
    const seen = watch(s);
    let partial = { text: '', reasoning: '' };
    s.on('message_part', () => {
      partial = { text: s.partial?.text ?? '', reasoning: s.partial?.reasoning ?? '' };
    });
    await s.until((x) => x.connected, within);
    await gate.open();
    await s.until((x) => x.messages.length === 2 && seen.turnEnded(), within);
    const msgs = await messagesOf(chat.id, u.token);
    expect(msgs[1]?.content).toEqual([
      { type: 'reasoning', text: 'step one step two' },
      { type: 'text', text: 'Echo: think' },
    ]);
    // The parts the stream got (replayed on connect, then live) add up to the message.
    expect(partial).toEqual({ reasoning: 'step one step two', text: 'Echo: think' });
    await s.close();
  });

  it('a rejected API key ends the turn with kind "auth", after the sealed key was opened and sent', async () => {
    const u = await makeUser();
    const ring = await KeyRing.fromSecret(env.PROVIDER_KEY_ENCRYPTION_KEY);
    const db = testDb();
    await createProvider(db, ring, u.user.id, { provider: 'openrouter', api_key: 'bad-key', base_url: `${testEnv.MOCK_LLM_URL}/v1` });
    await db.close();
    const cfg = await config({ provider: 'openrouter', model: 'any' });
    const tag = crypto.randomUUID().slice(0, 8);
    const chat = await sdk(u.token).createChat({ content: `key ${tag}`, model_config_id: cfg });
    expect(await roomOf(chat.id).idle()).toBe('error');
    const after = await sdk(u.token).getChat(chat.id);
    expect(after.last_error).toEqual({ kind: 'auth', message: 'The model provider rejected the API key (HTTP 401).' });
    const [req] = await recorded(tag);
    expect(String(req?.headers.authorization)).toMatch(/^Bearer bad-ke/);
    expect(JSON.stringify(after)).not.toContain('bad-key');
  });

  it('a model that never answers ends the turn with kind "timeout"', async () => {
    const u = await makeUser();
    const chat = await sdk(u.token).createChat({ content: 'silence [[mock hang]]' });
    expect(await roomOf(chat.id).idle()).toBe('error');
    const after = await sdk(u.token).getChat(chat.id);
    expect(after.last_error?.kind).toBe('timeout');
  }, 40_000); // LLM_IDLE_TIMEOUT_MS is 15 s in the suites

  it('an upstream that dies mid-stream keeps the partial text and reports the error', async () => {
    const u = await makeUser();
    const chat = await sdk(u.token).createChat({ content: 'cut [[mock chunks=30 drop_after=5]]' });
    expect(await roomOf(chat.id).idle()).toBe('error');
    const msgs = await messagesOf(chat.id, u.token);
    expect(msgs.map((m) => m.role)).toEqual(['user', 'assistant']);
    expect(textOf(msgs[1] ?? { content: [] }).split(' ').length).toBeLessThanOrEqual(6);
  });

  it('the turn reports its final text and resolved model for work after it', async () => {
    const u = await makeUser();
    const chat = await sdk(u.token).createChat({ content: 'outcome' });
    await roomOf(chat.id).idle();
    const outcome = z
      .object({ status: z.string(), finalText: z.string(), error: z.null(), modelConfigId: z.string() })
      .parse(await roomOf(chat.id).outcome());
    expect(outcome).toEqual({ status: 'waiting', finalText: 'Echo: outcome', error: null, modelConfigId: testEnv.MOCK_MODEL_CONFIG_ID });
  });
});

describe('option and error mapping (AI SDK mock model)', () => {
  const resolved: ResolvedModel = {
    config: {
      id: 'c',
      provider: 'openai-compat',
      model: 'm',
      display_name: 'm',
      context_limit: 1000,
      compression_threshold: 70,
      pricing: null,
      options: { temperature: 0.7, max_output_tokens: 10, top_k: 3, provider_options: { openai: { user: 'u1' } } },
    },
    provider: { id: 'p', provider: 'openai-compat', base_url: 'http://unused', api_key: null },
    requested: true,
    debugRuns: 'off',
    titleModel: { model_config_id: null, enabled: false },
  };

  it('maps options to the call and usage back', async () => {
    const model = new MockLanguageModelV4({
      doStream: {
        stream: new ReadableStream({
          start(c) {
            c.enqueue({ type: 'stream-start', warnings: [] });
            c.enqueue({ type: 'text-start', id: 't' });
            c.enqueue({ type: 'text-delta', id: 't', delta: 'Hel' });
            c.enqueue({ type: 'text-delta', id: 't', delta: 'lo' });
            c.enqueue({ type: 'text-end', id: 't' });
            c.enqueue({
              type: 'finish',
              finishReason: { unified: 'stop', raw: 'stop' },
              usage: {
                inputTokens: { total: 12, noCache: 10, cacheRead: 2, cacheWrite: 1 },
                outputTokens: { total: 5, text: 3, reasoning: 2 },
              },
            });
            c.close();
          },
        }),
      },
    });
    const deltas: string[] = [];
    const out = await callModel({
      resolved,
      apiKey: null,
      system: 'sys',
      messages: [{ role: 'user', content: 'hi' }],
      signal: new AbortController().signal,
      onDelta: (d) => deltas.push(d.text),
      idleTimeoutMs: 1000,
      maxRetries: 0,
      model,
    });
    expect(deltas).toEqual(['Hel', 'lo']);
    expect(out).toMatchObject({ text: 'Hello', finishReason: 'stop' });
    expect(out.usage).toEqual({
      input_tokens: 12,
      output_tokens: 5,
      total_tokens: 17,
      reasoning_tokens: 2,
      cache_read_tokens: 2,
      cache_creation_tokens: 1,
    });
    const opts = model.doStreamCalls[0];
    expect(opts).toMatchObject({ temperature: 0.7, maxOutputTokens: 10, topK: 3, providerOptions: { openai: { user: 'u1' } } });
  });

  /** A mock model whose stream says "ok", after failing its first `failures` calls with HTTP `status`. */
  const flaky = (failures: number, status: number) => {
    let calls = 0;
    const model = new MockLanguageModelV4({
      doStream: () => {
        calls += 1;
        if (calls <= failures) {
          throw new APICallError({
            message: 'down',
            url: 'http://x',
            requestBodyValues: {},
            statusCode: status,
            responseHeaders: { 'retry-after-ms': '5' },
            isRetryable: status === 429 || status >= 500,
          });
        }
        return Promise.resolve({
          stream: new ReadableStream({
            start(c) {
              c.enqueue({ type: 'text-delta', id: 't', delta: 'ok' });
              c.enqueue({
                type: 'finish',
                finishReason: { unified: 'stop', raw: 'stop' },
                usage: {
                  inputTokens: { total: 1, noCache: 1, cacheRead: undefined, cacheWrite: undefined },
                  outputTokens: { total: 1, text: 1, reasoning: undefined },
                },
              });
              c.close();
            },
          }),
        });
      },
    });
    return { model, calls: () => calls };
  };
  const run = (model: MockLanguageModelV4, maxRetries: number) =>
    callModel({ resolved, apiKey: null, system: undefined, messages: [{ role: 'user', content: 'hi' }], signal: new AbortController().signal, onDelta: () => undefined, idleTimeoutMs: 1000, maxRetries, model });

  it('retries a retryable failure before the stream starts, up to maxRetries, then classifies it', async () => {
    const twice = flaky(2, 503);
    expect(await run(twice.model, 2)).toMatchObject({ text: 'ok', finishReason: 'stop' });
    expect(twice.calls()).toBe(3);
    const thrice = flaky(3, 503);
    await expect(run(thrice.model, 2)).rejects.toMatchObject({ kind: 'provider_error' });
    expect(thrice.calls()).toBe(3);
  });

  it('does not retry a request the provider rejected', async () => {
    const bad = flaky(1, 400);
    await expect(run(bad.model, 2)).rejects.toMatchObject({ kind: 'invalid_request' });
    expect(bad.calls()).toBe(1);
  });

  it("waits the provider's retry-after when it is sane, else 2 s doubling", () => {
    const err = (headers: Record<string, string>) =>
      new APICallError({ message: 'x', url: 'http://x', requestBodyValues: {}, statusCode: 429, responseHeaders: headers });
    expect(retryDelayMs(err({ 'retry-after-ms': '250' }), 0)).toBe(250);
    expect(retryDelayMs(err({ 'retry-after': '3' }), 0)).toBe(3000);
    expect(retryDelayMs(err({ 'retry-after': '3600' }), 1)).toBe(4000);
    expect(retryDelayMs(err({}), 0)).toBe(2000);
  });

  it("puts the system text and the history in the provider's prompt format", () => {
    expect(
      toPrompt('be brief', [
        { role: 'user', content: 'hi' },
        { role: 'assistant', content: [{ type: 'text', text: 'hello' }] },
        { role: 'system', content: 'summary' },
      ]),
    ).toEqual([
      { role: 'system', content: 'be brief' },
      { role: 'user', content: [{ type: 'text', text: 'hi' }] },
      { role: 'assistant', content: [{ type: 'text', text: 'hello' }] },
      { role: 'system', content: 'summary' },
    ]);
    expect(toPrompt(undefined, [])).toEqual([]);
  });

  it('builds a provider model once per provider, base URL, model and key', () => {
    const r = (patch: { base_url?: string; model?: string; id?: string }): ResolvedModel => ({
      ...resolved,
      config: { ...resolved.config, model: patch.model ?? 'm' },
      provider: { ...resolved.provider, id: patch.id ?? 'p-cache', base_url: patch.base_url ?? 'http://127.0.0.1:9/v1' },
    });
    const a = languageModel(r({}), 'k1');
    expect(languageModel(r({}), 'k1')).toBe(a);
    expect(languageModel(r({}), 'k2')).not.toBe(a);
    expect(languageModel(r({ model: 'other' }), 'k1')).not.toBe(languageModel(r({}), 'k1'));
    expect(languageModel(r({ base_url: 'http://127.0.0.1:8/v1' }), 'k1')).not.toBe(languageModel(r({}), 'k1'));
    expect(languageModel(r({ id: 'p-other' }), 'k1')).not.toBe(languageModel(r({}), 'k1'));
  });

  it('classifies provider failures without their bodies', () => {
    const err = (statusCode: number) =>
      new APICallError({ message: 'secret sk-123 echoed', url: 'http://x', requestBodyValues: {}, statusCode, responseBody: 'sk-123' });
    const p = { text: '', reasoning: '' };
    expect(classify(err(401), p, false).kind).toBe('auth');
    expect(classify(err(429), p, false).kind).toBe('rate_limit');
    expect(classify(err(400), p, false).kind).toBe('invalid_request');
    expect(classify(err(503), p, false).kind).toBe('provider_error');
    expect(classify(new Error('x'), p, true).kind).toBe('timeout');
    for (const s of [401, 429, 400, 503]) expect(classify(err(s), p, false).message).not.toContain('sk-123');
    expect(callSettings({})).toMatchObject({ temperature: undefined, maxOutputTokens: undefined });
    expect(toUsage(undefined).total_tokens).toBe(0);
  });
});
