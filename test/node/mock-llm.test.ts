/**
 * The mock OpenAI-compatible LLM (scripts/lib/mock-llm.mjs) over real HTTP, its CLI, and, when the Vercel AI SDK
 * is installed, the SDK's OpenAI-compatible provider against it.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { parseDirectives, startMockLlm } from '../../scripts/lib/mock-llm.mjs';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

// The wire shapes, as strict as the AI SDK's OpenAI providers parse them (they require choices[].index).
const Usage = z.object({
  prompt_tokens: z.number().int(),
  completion_tokens: z.number().int(),
  total_tokens: z.number().int(),
  prompt_tokens_details: z.object({ cached_tokens: z.number().int() }),
  completion_tokens_details: z.object({ reasoning_tokens: z.number().int() }),
});
const Completion = z.object({
  id: z.string(),
  object: z.literal('chat.completion'),
  created: z.number().int(),
  model: z.string(),
  choices: z.array(
    z.object({
      index: z.number().int(),
      message: z.object({
        role: z.literal('assistant'),
        content: z.string(),
        reasoning_content: z.string().optional(),
      }),
      finish_reason: z.string(),
    }),
  ),
  usage: Usage,
});
const Chunk = z.object({
  id: z.string(),
  object: z.literal('chat.completion.chunk'),
  created: z.number().int(),
  model: z.string(),
  choices: z.array(
    z.object({
      index: z.number().int(),
      delta: z.object({
        role: z.literal('assistant').optional(),
        content: z.string().optional(),
        reasoning_content: z.string().optional(),
      }),
      finish_reason: z.string().nullable(),
    }),
  ),
  usage: Usage.nullable().optional(),
});
type Chunk = z.infer<typeof Chunk>;
const ErrorBody = z.object({
  error: z.object({ message: z.string(), type: z.string(), param: z.null(), code: z.string().nullable() }),
});
const Recorded = z.array(
  z.object({
    method: z.string(),
    path: z.string(),
    headers: z.record(z.string(), z.string()),
    body: z.unknown(),
    started_at: z.number(),
    ended_at: z.number().optional(),
  }),
);

type Mock = Awaited<ReturnType<typeof startMockLlm>>;
let mock: Mock;
const logs: string[] = [];

beforeAll(async () => {
  mock = await startMockLlm({ log: (line) => logs.push(line) });
});
afterAll(async () => {
  await mock.close();
});
beforeEach(() => {
  mock.reset();
  logs.length = 0;
});

const user = (content: string) => ({ role: 'user', content });

async function chat(body: Record<string, unknown>, init: { key?: string | null; signal?: AbortSignal } = {}) {
  const key = init.key === undefined ? 'sk-test-abcdefgh' : init.key;
  return await fetch(`${mock.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(key === null ? {} : { authorization: `Bearer ${key}` }) },
    body: JSON.stringify({ model: 'mock-model', ...body }),
    signal: init.signal,
  });
}

/** Every SSE event of a finished response, checking the framing on the way. */
async function sseData(res: Response): Promise<string[]> {
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
  const text = await res.text();
  expect(text.endsWith('\n\n')).toBe(true);
  const events = text.slice(0, -2).split('\n\n');
  for (const e of events) expect(e).toMatch(/^data: [^\n]+$/);
  return events.map((e) => e.slice('data: '.length));
}

function chunksOf(data: string[]): Chunk[] {
  expect(data.at(-1)).toBe('[DONE]');
  return data.slice(0, -1).map((d) => Chunk.parse(JSON.parse(d)));
}

const contentOf = (chunks: Chunk[]) => chunks.map((c) => c.choices[0]?.delta.content ?? '').join('');

async function post(p: string, body?: unknown) {
  return await fetch(`${mock.url}${p}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
}

describe('parseDirectives', () => {
  it('reads knobs, quoted strings and bare flags, and removes the directive from the text', () => {
    expect(parseDirectives('hello [[mock latency_ms=200 chunks=50 error_status=500 reply="hello \\"there\\""]] world')).toEqual({
      config: { latency_ms: 200, chunks: 50, error_status: 500, reply: 'hello "there"' },
      text: 'hello world',
    });
    expect(parseDirectives('[[mock hang reasoning]]\nhi')).toEqual({ config: { hang: true, reasoning: true }, text: 'hi' });
    expect(parseDirectives('a [[mock chunks=2]] b [[mock chunks=3 reasoning="why not"]]')).toEqual({
      config: { chunks: 3, reasoning: 'why not' },
      text: 'a b',
    });
    expect(parseDirectives('no  directive [[mockery]]')).toEqual({ config: {}, text: 'no  directive [[mockery]]' });
  });

  it('rejects unknown knobs and bad values', () => {
    expect(() => parseDirectives('[[mock latncy_ms=1]]')).toThrow(/unknown knob 'latncy_ms'/);
    expect(() => parseDirectives('[[mock latency_ms=soon]]')).toThrow(/latency_ms/);
    expect(() => parseDirectives('[[mock error_status=200]]')).toThrow(/error_status/);
  });
});

describe('mock LLM over HTTP', () => {
  it('answers a non-streaming completion with the echo and word-count usage', async () => {
    const res = await chat({ messages: [{ role: 'system', content: 'You are terse.' }, user('hello big world')] });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/json');
    const body = Completion.parse(await res.json());
    expect(body.model).toBe('mock-model');
    expect(body.choices).toHaveLength(1);
    expect(body.choices[0]).toMatchObject({ index: 0, message: { role: 'assistant', content: 'Echo: hello big world' }, finish_reason: 'stop' });
    expect(body.usage).toEqual({
      prompt_tokens: 6,
      completion_tokens: 4,
      total_tokens: 10,
      prompt_tokens_details: { cached_tokens: 0 },
      completion_tokens_details: { reasoning_tokens: 0 },
    });
  });

  it('echoes the last user message, text parts joined, whatever comes after it', async () => {
    const res = await chat({
      messages: [
        user('first'),
        { role: 'assistant', content: 'Echo: first' },
        { role: 'user', content: [{ type: 'text', text: 'second' }, { type: 'text', text: 'part' }] },
        { role: 'assistant', content: 'partial' },
      ],
    });
    const body = Completion.parse(await res.json());
    expect(body.choices[0]?.message.content).toBe('Echo: second\npart');
    expect(body.usage.prompt_tokens).toBe(6);
  });

  it('streams word-sized deltas that reassemble to the echo, then a stop chunk and [DONE]', async () => {
    const data = await sseData(await chat({ stream: true, messages: [user('one two  three')] }));
    const chunks = chunksOf(data);
    expect(chunks[0]?.choices[0]?.delta.role).toBe('assistant');
    const deltas = chunks.map((c) => c.choices[0]?.delta.content).filter((d) => d !== undefined && d !== '');
    expect(deltas).toEqual(['Echo:', ' one', ' two', '  three']);
    expect(contentOf(chunks)).toBe('Echo: one two  three');
    expect(chunks.at(-1)?.choices[0]).toMatchObject({ finish_reason: 'stop', delta: {} });
    for (const c of chunks.slice(0, -1)) expect(c.choices[0]?.finish_reason).toBeNull();
    for (const c of chunks) expect(c.usage).toBeUndefined();
    expect(new Set(chunks.map((c) => c.id)).size).toBe(1);
  });

  it('adds a usage chunk with empty choices when stream_options.include_usage is set', async () => {
    const data = await sseData(
      await chat({ stream: true, stream_options: { include_usage: true }, messages: [{ role: 'system', content: 'sys' }, user('a b')] }),
    );
    const chunks = chunksOf(data);
    const last = chunks.at(-1);
    expect(last?.choices).toEqual([]);
    expect(last?.usage).toEqual({
      prompt_tokens: 3,
      completion_tokens: 3,
      total_tokens: 6,
      prompt_tokens_details: { cached_tokens: 0 },
      completion_tokens_details: { reasoning_tokens: 0 },
    });
    expect(chunks.at(-2)?.choices[0]?.finish_reason).toBe('stop');
    for (const c of chunks.slice(0, -1)) expect(c.usage).toBeNull();
  });

  it('error_status=500 answers 500 with an OpenAI-style error body', async () => {
    const res = await chat({ messages: [user('boom [[mock error_status=500]]')] });
    expect(res.status).toBe(500);
    const body = ErrorBody.parse(await res.json());
    expect(body.error.type).toBe('server_error');
    expect(body.error.message).toMatch(/error_status=500/);
    const streamed = await chat({ stream: true, messages: [user('[[mock error_status=429]] boom')] });
    expect(streamed.status).toBe(429);
    expect(ErrorBody.parse(await streamed.json()).error.code).toBe('rate_limit_exceeded');
  });

  it('latency_ms delays the first byte', async () => {
    const t0 = performance.now();
    const res = await chat({ stream: true, messages: [user('slow [[mock latency_ms=300]]')] });
    expect(performance.now() - t0).toBeGreaterThanOrEqual(280);
    expect(contentOf(chunksOf(await sseData(res)))).toBe('Echo: slow');
  });

  it('reply, chunks, chunk_delay_ms, reasoning, finish_reason and cached_tokens', async () => {
    const fixed = Completion.parse(
      await (await chat({ messages: [user('ignored [[mock reply="hello there" finish_reason=length cached_tokens=1]]')] })).json(),
    );
    expect(fixed.choices[0]).toMatchObject({ message: { content: 'hello there' }, finish_reason: 'length' });
    expect(fixed.usage.prompt_tokens_details.cached_tokens).toBe(1);

    const long = chunksOf(await sseData(await chat({ stream: true, messages: [user('x [[mock chunks=50 chunk_delay_ms=1]]')] })));
    const deltas = long.filter((c) => (c.choices[0]?.delta.content ?? '') !== '');
    expect(deltas).toHaveLength(50);
    expect(contentOf(long)).toBe(Array.from({ length: 50 }, (_, i) => (i % 2 === 0 ? 'Echo:' : 'x')).join(' '));

    const thinking = chunksOf(
      await sseData(await chat({ stream: true, stream_options: { include_usage: true }, messages: [user('why [[mock reasoning="because I can"]]')] })),
    );
    const reasoning = thinking.map((c) => c.choices[0]?.delta.reasoning_content ?? '').join('');
    expect(reasoning).toBe('because I can');
    const firstContent = thinking.findIndex((c) => (c.choices[0]?.delta.content ?? '') !== '');
    const lastReasoning = thinking.findLastIndex((c) => c.choices[0]?.delta.reasoning_content !== undefined);
    expect(lastReasoning).toBeLessThan(firstContent);
    expect(contentOf(thinking)).toBe('Echo: why');
    expect(thinking.at(-1)?.usage?.completion_tokens_details.reasoning_tokens).toBe(3);
    expect(thinking.at(-1)?.usage?.completion_tokens).toBe(5);

    const nonStreamed = Completion.parse(await (await chat({ messages: [user('hm [[mock reasoning]]')] })).json());
    expect(nonStreamed.choices[0]?.message).toMatchObject({ content: 'Echo: hm', reasoning_content: 'Thinking about: hm' });
  });

  it('answers 400 for an unknown knob, bad JSON and a body without messages', async () => {
    const typo = await chat({ messages: [user('[[mock latency=5]]')] });
    expect(typo.status).toBe(400);
    expect(ErrorBody.parse(await typo.json()).error.message).toMatch(/unknown knob 'latency'/);

    const badJson = await fetch(`${mock.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: 'Bearer k', 'content-type': 'application/json' },
      body: '{"model": "m", "messages": [',
    });
    expect(badJson.status).toBe(400);
    expect(ErrorBody.parse(await badJson.json()).error.type).toBe('invalid_request_error');

    const noMessages = await chat({ messages: [] });
    expect(noMessages.status).toBe(400);
    ErrorBody.parse(await noMessages.json());
    expect(mock.requests.map((r) => r.body)).toEqual([expect.anything(), null, { model: 'mock-model', messages: [] }]);
  });

  it('wants a bearer key and answers 401 to bad-key', async () => {
    const bad = await chat({ messages: [user('hi')] }, { key: 'bad-key' });
    expect(bad.status).toBe(401);
    expect(ErrorBody.parse(await bad.json()).error).toMatchObject({ type: 'invalid_request_error', code: 'invalid_api_key' });
    const missing = await chat({ messages: [user('hi')] }, { key: null });
    expect(missing.status).toBe(401);
    ErrorBody.parse(await missing.json());
    const models = await fetch(`${mock.url}/v1/models`, { headers: { authorization: 'Bearer bad-key' } });
    expect(models.status).toBe(401);

    const open = await startMockLlm({ requireAuth: false });
    try {
      const res = await fetch(`${open.url}/v1/chat/completions`, {
        method: 'POST',
        body: JSON.stringify({ model: 'm', messages: [user('hi')] }),
      });
      expect(res.status).toBe(200);
    } finally {
      await open.close();
    }
  });

  it('lists models', async () => {
    const res = await fetch(`${mock.url}/v1/models`, { headers: { authorization: 'Bearer k' } });
    expect(res.status).toBe(200);
    const body = z
      .object({ object: z.literal('list'), data: z.array(z.object({ id: z.string(), object: z.literal('model'), owned_by: z.string() })) })
      .parse(await res.json());
    expect(body.data.map((m) => m.id)).toContain('mock-model');
    const unknown = await fetch(`${mock.url}/v1/embeddings`, { method: 'POST', headers: { authorization: 'Bearer k' } });
    expect(unknown.status).toBe(404);
    ErrorBody.parse(await unknown.json());
  });

  it('records every request with its body and a redacted key, also over HTTP', async () => {
    const messages = [{ role: 'system', content: 'SYSTEM PROMPT: summary of earlier turns' }, user('hi [[mock chunks=2]]')];
    await (await chat({ messages })).text();
    await (await chat({ messages: [user('x')] }, { key: 'bad-key' })).text();
    expect(mock.requests).toHaveLength(2);
    const [first, second] = mock.requests;
    expect(first).toMatchObject({ method: 'POST', path: '/v1/chat/completions', body: { model: 'mock-model', messages } });
    expect(first?.headers.authorization).toBe('Bearer sk-tes...');
    expect(first?.headers['content-type']).toBe('application/json');
    expect(JSON.stringify(mock.requests)).not.toContain('abcdefgh');
    expect(second?.headers.authorization).toBe('Bearer bad-ke...');

    const overHttp = Recorded.parse(await (await fetch(`${mock.url}/__mock/requests`)).json());
    expect(overHttp).toEqual(mock.requests);
  });

  it('global knobs through /__mock/config, overridden per request, cleared by /__mock/reset and reset()', async () => {
    const set = await post('/__mock/config', { reply: 'global reply', latency_ms: 0 });
    expect(set.status).toBe(200);
    expect(await set.json()).toEqual({ reply: 'global reply', latency_ms: 0 });
    const badKnob = await post('/__mock/config', { reply: 5 });
    expect(badKnob.status).toBe(400);
    ErrorBody.parse(await badKnob.json());

    const globalReply = Completion.parse(await (await chat({ messages: [user('hi')] })).json());
    expect(globalReply.choices[0]?.message.content).toBe('global reply');
    const local = Completion.parse(await (await chat({ messages: [user('hi [[mock reply="local"]]')] })).json());
    expect(local.choices[0]?.message.content).toBe('local');

    expect(await (await post('/__mock/config', { latency_ms: null })).json()).toEqual({ reply: 'global reply' });
    expect(mock.requests).toHaveLength(2);
    expect((await post('/__mock/reset')).status).toBe(200);
    expect(mock.requests).toHaveLength(0);
    expect(await (await fetch(`${mock.url}/__mock/config`)).json()).toEqual({});
    expect(Completion.parse(await (await chat({ messages: [user('hi')] })).json()).choices[0]?.message.content).toBe('Echo: hi');

    await post('/__mock/config', { error_status: 503 });
    expect((await chat({ messages: [user('hi')] })).status).toBe(503);
    mock.reset();
    expect(mock.requests).toHaveLength(0);
    expect((await chat({ messages: [user('hi')] })).status).toBe(200);
  });

  it('refuses /__mock/* to web pages (any Origin header) and changes nothing', async () => {
    mock.reset();
    const fromPage = { 'content-type': 'application/json', origin: 'https://evil.example' };
    const set = await fetch(`${mock.url}/__mock/config`, { method: 'POST', headers: fromPage, body: JSON.stringify({ error_status: 500 }) });
    expect(set.status).toBe(403);
    expect(await set.json()).toMatchObject({ error: { message: 'mock: /__mock/* refuses requests from web pages (Origin header)' } });
    for (const [method, p] of [['GET', '/__mock/requests'], ['GET', '/__mock/config'], ['POST', '/__mock/reset']]) {
      expect((await fetch(`${mock.url}${p}`, { method, headers: { origin: 'http://127.0.0.1:3000' } })).status).toBe(403);
    }
    expect(await (await fetch(`${mock.url}/__mock/config`)).json()).toEqual({});
  });

  it('survives a client abort mid-stream and stops writing', async () => {
    const ac = new AbortController();
    const res = await chat({ stream: true, messages: [user('long [[mock chunks=2000 chunk_delay_ms=2]]')] }, { signal: ac.signal });
    expect(res.status).toBe(200);
    const body = res.body as ReadableStream<Uint8Array> | null;
    if (!body) throw new Error('no body');
    const reader = body.getReader();
    let got = '';
    const decoder = new TextDecoder();
    while ((got.match(/\n\n/g) ?? []).length < 5) {
      const { value, done } = await reader.read();
      if (done) break;
      got += decoder.decode(value, { stream: true });
    }
    ac.abort();
    await expect(reader.read()).rejects.toThrow();
    const deadline = Date.now() + 5000;
    while (!logs.some((l) => l.includes('client went away')) && Date.now() < deadline) {
      await new Promise((r) => {
        setTimeout(r, 10);
      });
    }
    const gone = logs.find((l) => l.includes('client went away'));
    const sent = Number(/after (\d+) deltas/.exec(gone ?? '')?.[1] ?? NaN);
    expect(sent).toBeGreaterThanOrEqual(3);
    expect(sent).toBeLessThan(100);
    const after = Completion.parse(await (await chat({ messages: [user('still alive')] })).json());
    expect(after.choices[0]?.message.content).toBe('Echo: still alive');
    expect(logs.filter((l) => l.includes('200 stream'))).toEqual([]);
  });

  it('gate holds a stream after gate_after deltas until it is opened; waiting on the gate is an event', async () => {
    const pending = chat({ stream: true, messages: [user('one two three four [[mock gate="g1" gate_after=2]]')] });
    const state = z.object({ name: z.string(), open: z.boolean(), waiting: z.number(), arrived: z.number(), timed_out: z.boolean().optional() });
    const waited = state.parse(await (await fetch(`${mock.url}/__mock/gates/g1?waiting=1&timeout_ms=5000`)).json());
    expect(waited).toEqual({ name: 'g1', open: false, waiting: 1, arrived: 1 });
    const res = await pending;
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    let got = '';
    while ((got.match(/"content":"[^"]/g) ?? []).length < 2) {
      const { value, done } = await reader.read();
      if (done) throw new Error('ended at the gate');
      got += new TextDecoder().decode(value);
    }
    expect(got).not.toContain('three');
    expect(mock.requests[0]?.ended_at).toBeUndefined();
    const opened = state.extend({ released: z.number() }).parse(await (await post('/__mock/gates/g1/open')).json());
    expect(opened).toMatchObject({ open: true, released: 1, waiting: 0 });
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      got += new TextDecoder().decode(value);
    }
    expect(got).toContain(' three');
    expect(got).toContain('[DONE]');
    // An open gate lets later requests through; a timed-out wait says so.
    expect(contentOf(chunksOf(await sseData(await chat({ stream: true, messages: [user('x [[mock gate="g1"]]')] }))))).toBe('Echo: x');
    const none = state.parse(await (await fetch(`${mock.url}/__mock/gates/g2?waiting=1&timeout_ms=50`)).json());
    expect(none).toEqual({ name: 'g2', open: false, waiting: 0, arrived: 0, timed_out: true });
    await new Promise((r) => {
      setTimeout(r, 0);
    });
    const [first, second] = mock.requests;
    expect(first?.started_at).toBeLessThan(first?.ended_at ?? 0);
    expect(first?.ended_at ?? Infinity).toBeLessThanOrEqual(second?.started_at ?? 0);
  });

  it('reset releases requests waiting at a gate', async () => {
    const res = chat({ stream: true, messages: [user('held [[mock gate="g3"]]')] });
    await fetch(`${mock.url}/__mock/gates/g3?waiting=1`);
    mock.reset();
    expect(contentOf(chunksOf(await sseData(await res)))).toBe('Echo: held');
  });

  it('drop_after cuts the connection mid-stream', async () => {
    const res = await chat({ stream: true, messages: [user('a b c d [[mock drop_after=2]]')] });
    expect(res.status).toBe(200);
    await expect(res.text()).rejects.toThrow();
  });

  it('hang never answers; the client times out and close() still returns', async () => {
    const own = await startMockLlm();
    try {
      const t0 = performance.now();
      await expect(
        fetch(`${own.url}/v1/chat/completions`, {
          method: 'POST',
          headers: { authorization: 'Bearer k' },
          body: JSON.stringify({ model: 'm', messages: [user('[[mock hang]]')] }),
          signal: AbortSignal.timeout(200),
        }),
      ).rejects.toThrow();
      expect(performance.now() - t0).toBeGreaterThanOrEqual(190);
      // One left hanging while we close.
      const pending = fetch(`${own.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { authorization: 'Bearer k' },
        body: JSON.stringify({ model: 'm', messages: [user('[[mock hang]]')] }),
      }).then(
        () => 'answered',
        () => 'failed',
      );
      await new Promise((r) => {
        setTimeout(r, 50);
      });
      await own.close();
      expect(await pending).toBe('failed');
    } finally {
      await own.close().catch(() => undefined);
    }
  });
});

describe('mock LLM tool calls', () => {
  const ToolDelta = z.object({
    index: z.number().int(),
    id: z.string().optional(),
    type: z.literal('function').optional(),
    function: z.object({ name: z.string().optional(), arguments: z.string() }),
  });
  const ToolChunk = z.object({
    choices: z.array(z.object({ delta: z.looseObject({ tool_calls: z.array(ToolDelta).optional() }), finish_reason: z.string().nullable() })),
  });
  /** The tool calls a stream carries, reassembled the way clients do (by index), and its finish reason. */
  function streamedCalls(data: string[]) {
    const calls: { id: string; name: string; arguments: string }[] = [];
    let finish: string | null = null;
    for (const d of data.slice(0, -1)) {
      const choice = ToolChunk.parse(JSON.parse(d)).choices[0];
      finish = choice?.finish_reason ?? finish;
      for (const t of choice?.delta.tool_calls ?? []) {
        const c = (calls[t.index] ??= { id: '', name: '', arguments: '' });
        if (t.id) c.id = t.id;
        if (t.function.name) c.name = t.function.name;
        c.arguments += t.function.arguments;
      }
    }
    return { calls, finish };
  }
  const asked = (calls: { id: string; name: string; arguments: string }[]) => ({
    role: 'assistant',
    content: null,
    tool_calls: calls.map((c) => ({ id: c.id, type: 'function', function: { name: c.name, arguments: c.arguments } })),
  });

  it('tool= asks for one call, streamed as OpenAI does; with its result the model answers in text', async () => {
    const ask = user('add them [[mock tool="srv__add" tool_args="{\\"a\\":1,\\"b\\":2}"]]');
    const first = streamedCalls(await sseData(await chat({ messages: [ask], stream: true })));
    expect(first.finish).toBe('tool_calls');
    expect(first.calls).toMatchObject([{ name: 'srv__add', arguments: '{"a":1,"b":2}' }]);
    expect(first.calls[0]?.id).toMatch(/^call_\d+_0$/);
    // The next step: the call and its result follow the user message; the plan is done, so the model answers.
    const res = await chat({ messages: [ask, asked(first.calls), { role: 'tool', tool_call_id: first.calls[0]?.id, content: '3' }], stream: true });
    const data = await sseData(res);
    expect(contentOf(chunksOf(data))).toBe('Tools said: 3');
    expect(streamedCalls(data)).toEqual({ calls: [], finish: 'stop' });
  });

  it('tools= plans steps (two calls in one), non-streamed too; tool_times repeats; reply wins at the end', async () => {
    const steps = [[{ name: 'a__echo', args: { text: 'x' } }], [{ name: 'a__add', args: { a: 1, b: 1 } }, { name: 'b__echo', args: {} }]];
    const ask = user(`go [[mock tools=${JSON.stringify(JSON.stringify(steps))} tool_text="on it" reply="all done"]]`);
    const one = z.looseObject({ choices: z.array(z.looseObject({ message: z.looseObject({ content: z.string().nullable(), tool_calls: z.array(z.unknown()).optional() }), finish_reason: z.string() })) });
    const r0 = one.parse(await (await chat({ messages: [ask] })).json()).choices[0];
    expect(r0?.finish_reason).toBe('tool_calls');
    expect(r0?.message.content).toBe('on it');
    expect(r0?.message.tool_calls).toMatchObject([{ type: 'function', function: { name: 'a__echo', arguments: '{"text":"x"}' } }]);
    const step1 = [ask, { role: 'assistant', content: 'on it', tool_calls: r0?.message.tool_calls }, { role: 'tool', tool_call_id: 'c', content: 'x' }];
    const s1 = streamedCalls(await sseData(await chat({ messages: step1, stream: true })));
    expect(s1.calls.map((c) => [c.name, c.arguments])).toEqual([
      ['a__add', '{"a":1,"b":1}'],
      ['b__echo', '{}'],
    ]);
    expect(new Set(s1.calls.map((c) => c.id)).size).toBe(2);
    const step2 = [...step1, asked(s1.calls), { role: 'tool', tool_call_id: 'd', content: '2' }, { role: 'tool', tool_call_id: 'e', content: '' }];
    expect(contentOf(chunksOf(await sseData(await chat({ messages: step2, stream: true }))))).toBe('all done');

    // tool_times=2: the same call in steps 0 and 1, then the answer quotes the last step's results.
    const rep = user('[[mock tool="t__echo" tool_times=2]]');
    const c0 = streamedCalls(await sseData(await chat({ messages: [rep], stream: true }))).calls;
    const after0 = [rep, asked(c0), { role: 'tool', tool_call_id: c0[0]?.id, content: 'r0' }];
    const c1 = streamedCalls(await sseData(await chat({ messages: after0, stream: true }))).calls;
    expect(c1.map((c) => c.name)).toEqual(['t__echo']);
    const after1 = [...after0, asked(c1), { role: 'tool', tool_call_id: c1[0]?.id, content: 'r1' }];
    expect(contentOf(chunksOf(await sseData(await chat({ messages: after1, stream: true }))))).toBe('Tools said: r1');
  });

  it('gate_step holds only that step; a malformed plan is a 400', async () => {
    const name = `g${Date.now()}`;
    const ask = user(`[[mock tool="t__echo" gate="${name}" gate_step=1]]`);
    // Step 0 passes the gate without waiting.
    const c0 = streamedCalls(await sseData(await chat({ messages: [ask], stream: true }))).calls;
    const step1 = chat({ messages: [ask, asked(c0), { role: 'tool', tool_call_id: c0[0]?.id, content: 'ok' }], stream: true });
    const state = z.object({ waiting: z.number() }).parse(await (await fetch(`${mock.url}/__mock/gates/${name}?waiting=1`)).json());
    expect(state.waiting).toBe(1);
    expect((await post(`/__mock/gates/${name}/open`)).status).toBe(200);
    expect(contentOf(chunksOf(await sseData(await step1)))).toBe('Tools said: ok');

    for (const bad of ['[[mock tools="nope"]]', '[[mock tools="[[1]]"]]', '[[mock tool="x" tool_args="[1]"]]']) {
      const r = await chat({ messages: [user(bad)] });
      expect(r.status, bad).toBe(400);
      ErrorBody.parse(await r.json());
    }
  });
});

describe('scripts/mock-llm.mjs', () => {
  it('prints its URL, serves, and exits 0 on SIGTERM', async () => {
    const child = spawn(process.execPath, [path.join(ROOT, 'scripts', 'mock-llm.mjs'), '--port', '0'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const exit = new Promise<number | null>((resolve) => {
      child.once('exit', (code) => {
        resolve(code);
      });
    });
    try {
      let out = '';
      const line = await new Promise<string>((resolve, reject) => {
        child.stdout.on('data', (d: Buffer) => {
          out += d.toString();
          if (out.includes('\n')) resolve(out);
        });
        child.once('exit', () => {
          reject(new Error(`exited early: ${out}`));
        });
      });
      const url = /base_url (http:\/\/127\.0\.0\.1:\d+\/v1)\n$/.exec(line)?.[1];
      expect(url).toBeDefined();
      const res = await fetch(`${url ?? ''}/models`, { headers: { authorization: 'Bearer k' } });
      expect(res.status).toBe(200);
      child.kill('SIGTERM');
      expect(await exit).toBe(0);
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
  });
});

// The Vercel AI SDK is not a dependency; when it is installed, prove it parses what the mock sends.
const hasAiSdk = ['ai', '@ai-sdk/openai-compatible'].every((p) => existsSync(path.join(ROOT, 'node_modules', p, 'package.json')));
if (hasAiSdk) {
  interface CompatModule {
    createOpenAICompatible: (o: { baseURL: string; name: string; apiKey: string; includeUsage?: boolean }) => (modelId: string) => unknown;
  }
  interface AiModule {
    streamText: (o: { model: unknown; prompt: string; maxRetries?: number }) => {
      textStream: AsyncIterable<string>;
      text: PromiseLike<string>;
      finishReason: PromiseLike<string>;
      usage: PromiseLike<{ inputTokens?: number; outputTokens?: number }>;
    };
  }
  const load = async (specifier: string): Promise<unknown> => (await import(/* @vite-ignore */ specifier)) as unknown;

  describe('with the Vercel AI SDK', () => {
    it('streamText through createOpenAICompatible gets the echo and the usage', async () => {
      const { createOpenAICompatible } = (await load('@ai-sdk/openai-compatible')) as CompatModule;
      const { streamText } = (await load('ai')) as AiModule;
      const provider = createOpenAICompatible({ baseURL: `${mock.url}/v1`, name: 'mock', apiKey: 'k', includeUsage: true });
      const result = streamText({ model: provider('mock-model'), prompt: 'hello from the sdk', maxRetries: 0 });
      const pieces: string[] = [];
      for await (const piece of result.textStream) pieces.push(piece);
      expect(pieces.join('')).toBe('Echo: hello from the sdk');
      expect(pieces.length).toBeGreaterThan(1);
      expect(await result.text).toBe('Echo: hello from the sdk');
      expect(await result.finishReason).toBe('stop');
      expect(await result.usage).toMatchObject({ inputTokens: 4, outputTokens: 5 });
      expect(mock.requests.at(-1)?.body).toMatchObject({ model: 'mock-model', stream: true });
    });
  });
}
