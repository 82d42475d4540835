/**
 * The lean OpenAI-compatible path (durable-objects/llm/lean-compat.ts) against the AI SDK's own model: the same
 * request body for every call it serves, and, for the same bytes from the provider, the same deltas, result or error
 * out of callModel. Each case runs both paths on one fake fetch (the provider's answer as bytes, split at odd places).
 */
import { createOpenAICompatible } from '@ai-sdk/openai-compatible';
import type { ModelMessage } from 'ai';
import { describe, expect, it } from 'vitest';
import { leanBody, leanCompatModel } from '../../durable-objects/llm/lean-compat';
import { callModel, callSettings, ModelError, type ModelDelta, type ModelTool } from '../../durable-objects/llm/model';
import { toPrompt } from '../../durable-objects/llm/prompt';
import type { ProviderModel } from '../../durable-objects/llm/provider-types';
import type { ResolvedModel } from '../../functions/core/model-resolve';
import type { ModelOptions } from '../../functions/core/shapes/models';

const BASE = 'http://provider.test/v1';

function resolved(options: ModelOptions): ResolvedModel {
  return {
    config: { id: 'c', provider: 'openai-compat', model: 'm', display_name: 'm', context_limit: 1000, compression_threshold: 70, pricing: null, options },
    provider: { id: 'p', provider: 'openai-compat', base_url: BASE, api_key: null },
    requested: true,
    debugRuns: 'off',
    titleModel: { model_config_id: null, enabled: false },
  };
}

/** The provider's answer: an SSE body (cut into `piece`-byte chunks), or any response. */
type Answer = () => Response;
const sse =
  (events: string[], { piece = 0, eol = '\n' } = {}): Answer =>
  () => {
    const bytes = new TextEncoder().encode(events.map((e) => `data: ${e}${eol}${eol}`).join(''));
    const chunks: Uint8Array[] = [];
    for (let i = 0; i < bytes.length; i += piece || bytes.length) chunks.push(bytes.slice(i, i + (piece || bytes.length)));
    return new Response(
      new ReadableStream<Uint8Array>({
        start(c) {
          for (const x of chunks) c.enqueue(x);
          c.close();
        },
      }),
      { headers: { 'content-type': 'text/event-stream' } },
    );
  };
/** An SSE body written out by hand. */
const raw =
  (text: string): Answer =>
  () =>
    new Response(text, { headers: { 'content-type': 'text/event-stream' } });
const chunk = (delta: Record<string, unknown>, finish: string | null = null, extra: Record<string, unknown> = {}) =>
  JSON.stringify({ id: 'x', object: 'chat.completion.chunk', created: 1, model: 'm', choices: [{ index: 0, delta, finish_reason: finish }], ...extra });
const usage = (u: Record<string, unknown>) => JSON.stringify({ id: 'x', object: 'chat.completion.chunk', created: 1, model: 'm', choices: [], usage: u });

/** A fetch that keeps the JSON bodies it was sent and answers each call with the next answer (the last repeats). */
function recorder(answers: Answer[]) {
  const bodies: unknown[] = [];
  const f = (_input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
    bodies.push(JSON.parse(typeof init?.body === 'string' ? init.body : 'null'));
    const answer = answers[Math.min(bodies.length - 1, answers.length - 1)];
    return Promise.resolve(answer ? answer() : new Response('no answer', { status: 500 }));
  };
  return { f, bodies };
}

const sdkModel = (f: typeof fetch) => createOpenAICompatible({ name: 'openai-compat', baseURL: BASE, apiKey: 'k', includeUsage: true, fetch: f })('m');

interface Outcome {
  deltas: ModelDelta[];
  result?: Awaited<ReturnType<typeof callModel>>;
  error?: { kind: string; message: string; partial: { text: string; reasoning: string } };
}

async function run(model: ProviderModel, messages: ModelMessage[], options: ModelOptions, tools?: ModelTool[]): Promise<Outcome> {
  const deltas: ModelDelta[] = [];
  try {
    const result = await callModel({
      resolved: resolved(options),
      apiKey: 'k',
      system: 'Be brief.',
      messages,
      signal: new AbortController().signal,
      onDelta: (d) => deltas.push(d),
      idleTimeoutMs: 10_000,
      maxRetries: 1,
      model,
      ...(tools ? { tools } : {}),
    });
    return { deltas, result };
  } catch (e) {
    if (!(e instanceof ModelError)) throw e;
    return { deltas, error: { kind: e.kind, message: e.message, partial: e.partial } };
  }
}

/** Both paths on the same answers: their outcomes and request bodies, and whether the lean one used its fallback. */
async function both(answers: Answer[], messages: ModelMessage[] = CHAT, options: ModelOptions = {}, tools?: ModelTool[]) {
  const a = recorder(answers);
  const b = recorder(answers);
  const fallback = recorder(answers);
  const lean = leanCompatModel({ baseURL: BASE, apiKey: 'k', fallback: sdkModel(fallback.f), fetch: b.f });
  const sdk = await run(sdkModel(a.f), messages, options, tools);
  const leaned = await run(lean, messages, options, tools);
  return { sdk, lean: leaned, sdkBodies: a.bodies, leanBodies: [...b.bodies, ...fallback.bodies], fellBack: fallback.bodies.length > 0 };
}

const CHAT: ModelMessage[] = [
  { role: 'user', content: 'Hello' },
  { role: 'assistant', content: [{ type: 'text', text: 'Hi there' }] },
  { role: 'user', content: [{ type: 'text', text: 'Tell me more' }] },
];
const TEXT = [chunk({ role: 'assistant', content: '' }), chunk({ content: 'Hello' }), chunk({ content: ' world' }), chunk({}, 'stop'), usage({ prompt_tokens: 12, completion_tokens: 5, total_tokens: 17 }), '[DONE]'];

describe('the lean OpenAI-compatible path answers as the AI SDK does', () => {
  const cases: [string, Answer[]][] = [
    ['text, usage, [DONE]', [sse(TEXT)]],
    ['text cut into 7-byte pieces with CRLF line ends', [sse(TEXT, { piece: 7, eol: '\r\n' })]],
    [
      'reasoning (reasoning_content), then text; cached and reasoning tokens',
      [
        sse([
          chunk({ reasoning_content: 'Think' }),
          chunk({ reasoning_content: 'ing' }),
          chunk({ content: 'Done' }),
          chunk({}, 'stop'),
          usage({ prompt_tokens: 30, completion_tokens: 9, prompt_tokens_details: { cached_tokens: 20 }, completion_tokens_details: { reasoning_tokens: 4 } }),
        ]),
      ],
    ],
    ['reasoning spelled `reasoning`', [sse([chunk({ reasoning: 'Hmm' }), chunk({ content: 'Yes' }), chunk({}, 'stop')])]],
    ['finish: length', [sse([chunk({ content: 'Cut' }), chunk({}, 'length')])]],
    ['finish: content_filter', [sse([chunk({ content: 'No' }), chunk({}, 'content_filter')])]],
    ['finish: an unknown reason', [sse([chunk({ content: 'Odd' }, 'eos')])]],
    ['a refusal', [sse([chunk({ refusal: 'I cannot help with that.' }), chunk({}, 'stop')])]],
    ['no usage at all', [sse([chunk({ content: 'Quiet' }), chunk({}, 'stop'), '[DONE]'])]],
    ['no finish reason', [sse([chunk({ content: 'Partial' })])]],
    ['an error event mid-stream', [sse([chunk({ content: 'Half' }), JSON.stringify({ error: { message: 'overloaded', type: 'server_error' } })])]],
    ['a line that is not JSON', [sse([chunk({ content: 'Half' }), '{not json'])]],
    ['an event in two data lines, and comments and event names around events', [raw(`: hi\nevent: delta\ndata: ${chunk({ content: 'Two' }).replace('"content"', '\ndata: "content"')}\n\ndata: ${chunk({}, 'stop')}\n\n`)]],
    ['a last event without its blank line (dropped by both: no finish reason)', [raw(`data: ${chunk({ content: 'Cut' })}\n\ndata: ${chunk({}, 'stop')}\n`)]],
    ['HTTP 400 with an error body', [() => Response.json({ error: { message: 'bad model' } }, { status: 400 })]],
    ['HTTP 401', [() => Response.json({ error: { message: 'no key' } }, { status: 401 })]],
    ['HTTP 429 twice (one retry, then given up)', [() => Response.json({ error: { message: 'slow down' } }, { status: 429, headers: { 'retry-after-ms': '0' } })]],
    ['HTTP 503 with a body that is not JSON', [() => new Response('upstream down', { status: 503, headers: { 'retry-after-ms': '0' } })]],
    ['HTTP 500, then an answer on the retry', [() => new Response('oops', { status: 500, headers: { 'retry-after-ms': '0' } }), sse(TEXT)]],
  ];
  it.each(cases)('%s', async (_name, answers) => {
    const r = await both(answers);
    expect(r.fellBack).toBe(false);
    expect(r.lean).toEqual(r.sdk);
    expect(r.leanBodies).toEqual(r.sdkBodies);
  });

  it('reads an event written in two data lines as one, and drops a last event without its blank line', async () => {
    const split = await both([raw(`data: ${chunk({ content: 'Two' }).replace('"content"', '\ndata: "content"')}\n\ndata: ${chunk({}, 'stop')}\n\n`)]);
    expect(split.lean.result?.text).toBe('Two');
    expect(split.lean).toEqual(split.sdk);
    const cut = await both([raw(`data: ${chunk({ content: 'Cut' })}\n\ndata: ${chunk({}, 'stop')}`)]);
    expect(cut.lean.error?.partial.text).toBe('Cut');
    expect(cut.lean).toEqual(cut.sdk);
  });

  it('a model that calls a tool nobody offered: both report the call (the runner answers it as an unknown tool)', async () => {
    const call = { index: 0, id: 'call_1', type: 'function', function: { name: 'nope', arguments: '{"q":' } };
    const more = { index: 0, function: { arguments: '1}' } };
    const second = { index: 1, id: 'call_2', type: 'function', function: { name: 'also', arguments: '{}' } };
    const r = await both([sse([chunk({ content: 'Let me' }), chunk({ tool_calls: [call] }), chunk({ tool_calls: [more, second] }), chunk({}, 'tool_calls')])]);
    expect(r.fellBack).toBe(false);
    expect(r.lean).toEqual(r.sdk);
    expect(r.sdk.result?.toolCalls).toEqual([
      { toolCallId: 'call_1', toolName: 'nope', input: '{"q":1}' },
      { toolCallId: 'call_2', toolName: 'also', input: '{}' },
    ]);
  });

  it.each([
    ['a chunk without choices', JSON.stringify({ id: 'x', usage: null })],
    ['a delta of the wrong type', chunk({ content: 42 })],
    ['an event that is not an object', '"just a string"'],
    ['content as parts, with thinking', chunk({ content: [{ type: 'thinking', thinking: [{ type: 'text', text: 'hm' }] }, { type: 'text', text: 'ok' }] })],
  ])('an odd chunk (%s) ends the same way on both paths', async (_name, odd) => {
    const r = await both([sse([chunk({ content: 'Before' }), odd, chunk({}, 'stop')])]);
    expect(r.fellBack).toBe(false);
    expect(r.lean).toEqual(r.sdk);
  });

  it('sends the same body for every setting a model config has (top_k is dropped by both)', async () => {
    const options: ModelOptions = { temperature: 0.3, max_output_tokens: 99, top_p: 0.9, top_k: 5, presence_penalty: 0.5, frequency_penalty: -0.5 };
    const r = await both([sse(TEXT)], CHAT, options);
    expect(r.fellBack).toBe(false);
    expect(r.leanBodies).toEqual(r.sdkBodies);
    expect(r.sdkBodies[0]).toMatchObject({ temperature: 0.3, max_tokens: 99, top_p: 0.9, presence_penalty: 0.5, frequency_penalty: -0.5, stream: true });
  });

  it('leaves to the SDK every call it does not serve: tools, provider options, files, several text parts', async () => {
    const tool: ModelTool = { name: 'lookup', description: 'd', inputSchema: { type: 'object', properties: {} } };
    const withTools = await both([sse(TEXT)], CHAT, {}, [tool]);
    expect(withTools.fellBack).toBe(true);
    expect(withTools.lean).toEqual(withTools.sdk);
    const withOptions = await both([sse(TEXT)], CHAT, { provider_options: { 'openai-compat': { user: 'u1' } } });
    expect(withOptions.fellBack).toBe(true);
    expect(withOptions.leanBodies).toEqual(withOptions.sdkBodies);
    const file: ModelMessage[] = [{ role: 'user', content: [{ type: 'text', text: 'see' }, { type: 'image', image: new Uint8Array([1, 2, 3]), mediaType: 'image/png' }] }];
    expect(leanBody('m', { prompt: toPrompt(undefined, file, false), ...callSettings({}) })).toBeNull();
    const twoParts = { prompt: [{ role: 'user' as const, content: [{ type: 'text' as const, text: 'a' }, { type: 'text' as const, text: 'b' }] }] };
    expect(leanBody('m', twoParts)).toBeNull();
  });
});
