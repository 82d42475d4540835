/**
 * The tool loop through the public API: real workerd, real Postgres, the local MCP server over HTTP (the official SDK on
 * both ends), and the mock model asking for tool calls (`[[mock tool=...]]`, `[[mock tools=...]]`).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { Chat as ChatSchema } from '../../functions/core/shapes/chat';
import { runInDurableObject } from 'cloudflare:test';
import type { StreamEvent } from '@chatd-edge/sdk';
import type { ChatRoom } from '../../durable-objects/chat-room';
import { call, lockWaiters, makeUser, messagesOf, mockGate, postgres, roomOf, streamOf, testDb, testEnv, textOf, watch, within } from './helpers';
import { StreamClient } from './stream-client';
import { chatUntilIdle, mcpCallEnded, mcpCalls, mcpRunning, mcpServers, resultTextOf, storedMessages, ToolCall, ToolResult, toolKnob, toolsKnob } from './tool-helpers';

const servers = mcpServers();
afterEach(async () => {
  await servers.cleanup();
});

const Recorded = z.array(z.object({ body: z.looseObject({ messages: z.array(z.looseObject({ role: z.string() })), tools: z.array(z.unknown()).optional() }) }).loose());
async function modelRequests(marker: string) {
  const all = Recorded.parse(await (await fetch(`${testEnv.MOCK_LLM_URL}/__mock/requests`)).json());
  return all.filter((r) => JSON.stringify(r.body.messages).includes(marker));
}

describe('the tool loop', () => {
  it('runs two sequential tool calls and answers: the durable messages in order, each written once under its key', async () => {
    const { tool } = await servers.add({ tool_approval: 'auto' });
    const u = await makeUser();
    const tag = crypto.randomUUID().slice(0, 8);
    const plan = toolsKnob([[{ name: tool('add'), args: { a: 2, b: 3 } }], [{ name: tool('echo'), args: { text: `hi ${tag}` } }]]);
    const { chat, status } = await chatUntilIdle(u.token, `compute ${tag} ${plan}`);
    expect(status).toBe('waiting');

    const msgs = await messagesOf(chat.id, u.token);
    expect(msgs.map((m) => m.role)).toEqual(['user', 'assistant', 'tool', 'assistant', 'tool', 'assistant']);
    const [, a1, t1, a2, t2, final] = msgs;
    const c1 = ToolCall.parse(a1?.content[0]);
    expect(c1).toMatchObject({ name: tool('add'), args: { a: 2, b: 3 } });
    expect(ToolResult.parse(t1?.content[0])).toMatchObject({ tool_call_id: c1.tool_call_id, name: tool('add'), is_error: false });
    expect(resultTextOf(t1?.content[0])).toBe('5');
    expect(ToolResult.parse(t1?.content[0]).result.structuredContent).toEqual({ sum: 5 });
    const c2 = ToolCall.parse(a2?.content[0]);
    expect(c2).toMatchObject({ name: tool('echo'), args: { text: `hi ${tag}` } });
    expect(resultTextOf(t2?.content[0])).toBe(`hi ${tag}`);
    // The model saw both results: its answer quotes the last step's.
    expect(textOf(final ?? { content: [] })).toBe(`Tools said: hi ${tag}`);
    // Each step's assistant message carries the usage of its model call.
    expect(a1?.usage?.output_tokens).toBeGreaterThan(0);

    // Keys: the steps, each result by its call, the answer by the turn; one turn id throughout.
    const rows = await storedMessages(chat.id);
    const turnId = /^turn:([0-9a-f-]{36})$/.exec(rows.at(-1)?.key ?? '')?.[1] ?? '';
    expect(rows.map((r) => r.key)).toEqual([
      null,
      `turn:${turnId}:step:0`,
      `turn:${turnId}:tool:${c1.tool_call_id}`,
      `turn:${turnId}:step:1`,
      `turn:${turnId}:tool:${c2.tool_call_id}`,
      `turn:${turnId}`,
    ]);
    // The MCP server ran each call once, and the model got the results back in the provider's format.
    expect((await mcpCalls(tag)).map((c) => c.tool)).toEqual(['echo']);
    const reqs = await modelRequests(tag);
    expect(reqs).toHaveLength(3);
    expect(reqs[0]?.body.tools?.length).toBeGreaterThanOrEqual(5);
    expect(reqs[2]?.body.messages.map((m) => m.role)).toEqual(['user', 'assistant', 'tool', 'assistant', 'tool']);
    expect(reqs[2]?.body.messages[2]).toMatchObject({ role: 'tool', tool_call_id: c1.tool_call_id, content: '5' });
  });

  it('runs the calls of one step together: one assistant message with both calls, then both results', async () => {
    const { tool } = await servers.add({ tool_approval: 'auto' });
    const u = await makeUser();
    const tag = crypto.randomUUID().slice(0, 8);
    const plan = toolsKnob([[{ name: tool('sleep'), args: { ms: 200 } }, { name: tool('echo'), args: { text: tag } }]]);
    const { chat, status } = await chatUntilIdle(u.token, `both ${plan}`);
    expect(status).toBe('waiting');
    const msgs = await messagesOf(chat.id, u.token);
    expect(msgs.map((m) => m.role)).toEqual(['user', 'assistant', 'tool', 'tool', 'assistant']);
    const calls = msgs[1]?.content.map((p) => ToolCall.parse(p)) ?? [];
    expect(calls.map((c) => c.name)).toEqual([tool('sleep'), tool('echo')]);
    // Results in call order, whatever order they finished in.
    expect(msgs.slice(2, 4).map((m) => ToolResult.parse(m.content[0]).tool_call_id)).toEqual(calls.map((c) => c.tool_call_id));
    expect(textOf(msgs[4] ?? { content: [] })).toBe(`Tools said: slept 200 ms | ${tag}`);
  });

  it('stops with a note, not an error, when the model keeps calling tools past max_steps', async () => {
    const { tool } = await servers.add({ tool_approval: 'auto' });
    const db = testDb();
    const cfg = await db.query(
      "INSERT INTO chat_model_configs (provider, model, context_limit, options) VALUES ('openai-compat', 'mock-echo', 100000, '{\"max_steps\": 2}') RETURNING id",
    );
    await db.close();
    const u = await makeUser();
    const tag = crypto.randomUUID().slice(0, 8);
    const { chat, status } = await chatUntilIdle(u.token, `loop ${toolKnob(tool('echo'), { text: tag }, 100)}`, {
      model_config_id: z.object({ id: z.string() }).parse(cfg.rows[0]).id,
    });
    expect(status).toBe('waiting');
    const msgs = await messagesOf(chat.id, u.token);
    expect(msgs.map((m) => m.role)).toEqual(['user', 'assistant', 'tool', 'assistant', 'tool', 'assistant']);
    expect(textOf(msgs[5] ?? { content: [] })).toMatch(/^Stopped after 2 model calls with tools \(this model's max_steps\)/);
    expect(ChatSchema.parse((await call('GET', `/api/v2/chats/${chat.id}`, { token: u.token })).body).last_error).toBeNull();
    expect(await modelRequests(tag)).toHaveLength(2);
  });

  it('turns tool errors, a timeout and an unreachable server into error results the model sees; the turn goes on', async () => {
    const { tool } = await servers.add({ tool_approval: 'auto' });
    const down = await servers.add({ tool_approval: 'auto', url: 'http://127.0.0.1:1/mcp' });
    const u = await makeUser();
    const tag = crypto.randomUUID().slice(0, 8);
    const plan = toolsKnob([
      [
        { name: tool('fail'), args: { message: `broken ${tag}` } },
        { name: tool('sleep'), args: { ms: 60_000 } },
        { name: down.tool('echo'), args: { text: tag } },
        { name: tool('nope'), args: {} },
      ],
    ]);
    const { chat, status } = await chatUntilIdle(u.token, `errors ${plan}`);
    expect(status).toBe('waiting');
    const msgs = await messagesOf(chat.id, u.token);
    expect(msgs.map((m) => m.role)).toEqual(['user', 'assistant', 'tool', 'tool', 'tool', 'tool', 'assistant']);
    const results = msgs.slice(2, 6).map((m) => ToolResult.parse(m.content[0]));
    expect(results.map((r) => r.is_error)).toEqual([true, true, true, true]);
    expect(results.map((r) => resultTextOf(r))).toEqual([
      `broken ${tag}`,
      'The tool call did not answer within 3000 ms.',
      `The tool ${down.tool('echo')} is not available: The MCP server ${down.server.name} could not be reached.`,
      `There is no tool named ${tool('nope')}.`,
    ]);
    expect(textOf(msgs[6] ?? { content: [] })).toContain(`Tools said: broken ${tag} | The tool call did not answer within 3000 ms.`);
    const chatNow = ChatSchema.parse((await call('GET', `/api/v2/chats/${chat.id}`, { token: u.token })).body);
    expect(chatNow).toMatchObject({ status: 'waiting', last_error: null });
  });

  it('caps a big result, keeping its text and saying so', async () => {
    const { tool } = await servers.add({ tool_approval: 'auto' });
    const u = await makeUser();
    const { chat } = await chatUntilIdle(u.token, `big ${toolKnob(tool('big'), { chars: 50_000 })}`);
    const msgs = await messagesOf(chat.id, u.token);
    const r = ToolResult.parse(msgs[2]?.content[0]);
    expect(r.result.truncated).toBe(true);
    expect(JSON.stringify(r.result).length).toBeLessThanOrEqual(20_000);
    expect(resultTextOf(r)).toMatch(/^0123456789[0-9]+\n\[truncated: the result had \d+ characters\]$/);
  });

  it('interrupt cancels a running tool call, keeps what the turn produced, and the chat waits', async () => {
    const { tool } = await servers.add({ tool_approval: 'auto' });
    const u = await makeUser();
    const tag = crypto.randomUUID().slice(0, 8);
    // The server keeps only the arguments its tool declares: a unique duration marks this call.
    const ms = 2000 + Math.floor(Math.random() * 900);
    const r = await call('POST', '/api/v2/chats', { token: u.token, body: { content: `slow ${tag} ${toolKnob(tool('sleep'), { ms })}` } });
    const chat = ChatSchema.parse(r.body);
    await mcpRunning('sleep');
    expect((await call('POST', `/api/v2/chats/${chat.id}/interrupt`, { token: u.token })).status).toBe(202);
    expect(await roomOf(chat.id).idle()).toBe('waiting');
    const msgs = await messagesOf(chat.id, u.token);
    expect(msgs.map((m) => m.role)).toEqual(['user', 'assistant', 'tool']);
    const result = ToolResult.parse(msgs[2]?.content[0]);
    expect(result).toMatchObject({ name: tool('sleep'), is_error: true });
    expect(resultTextOf(result)).toBe('The tool call was interrupted.');
    // The server was told: its call stopped before its time was up.
    const ended = await mcpCallEnded(`"ms":${ms}`);
    expect(ended.aborted).toBe(true);
    expect((ended.ended_at ?? Infinity) - ended.started_at).toBeLessThan(ms);
    expect(await modelRequests(tag)).toHaveLength(1);
  });

  it('a socket that reconnects mid-loop sees every durable message and every part of the current step once', async () => {
    const { tool } = await servers.add({ tool_approval: 'auto' });
    const u = await makeUser();
    const gate = mockGate();
    // Step 1 streams "thinking about it" word by word and holds after two words, before its tool call.
    const plan = toolsKnob([[{ name: tool('add'), args: { a: 1, b: 1 } }], [{ name: tool('echo'), args: { text: 'two' } }]], `tool_text="thinking about it" gate_step=1`);
    const r = await call('POST', '/api/v2/chats', { token: u.token, body: { content: `steps ${plan} ${gate.directive(2)}` } });
    const chat = ChatSchema.parse(r.body);
    const early = await StreamClient.must(chat.id, u.token);
    // Step 0 is durable and step 1 waits at the gate after two words (the model's idle timeout is 2 s: be quick).
    await gate.waiting(1);
    const late = await StreamClient.must(chat.id, u.token, 0);
    await late.waitFor('the first frame', (c) => c.frames.length > 0);
    await gate.open();
    await early.waitIdle();
    await late.waitIdle();

    const stored = await messagesOf(chat.id, u.token);
    for (const s of [early, late]) {
      expect(s.messages().map((m) => m.id)).toEqual(stored.map((m) => m.id));
    }
    // The late socket: the durable messages so far, the status, the queue, then step 1's two parts from seq 0.
    const first = late.frames[0] ?? [];
    expect(first.map((e) => e.type)).toEqual(['message', 'message', 'message', 'status', 'queue_update', 'message_part', 'message_part']);
    // Every socket sees each step's parts once, seq 0.. without gaps, and a step's parts are followed by its message.
    for (const s of [early, late]) {
      let seqs: number[] = [];
      const steps: number[][] = [];
      for (const e of s.events) {
        if (e.type === 'message_part') seqs.push(e.message_part.seq);
        if (e.type === 'message' && seqs.length > 0) {
          steps.push(seqs);
          seqs = [];
        }
      }
      for (const st of steps) expect(st).toEqual(st.map((_, i) => i));
    }
    const text = (s: StreamClient) =>
      s.events.flatMap((e) => (e.type === 'message_part' && e.message_part.part.type === 'text' ? [e.message_part.part.text] : [])).join('');
    expect(text(late)).toBe(`thinking about itTools said: two`);
    expect(text(early)).toMatch(/^(thinking about it)?thinking about itTools said: two$/);
    expect(late.statuses().at(-1)).toBe('waiting');
    const toolParts = late.events.flatMap((e) => (e.type === 'message_part' && e.message_part.role === 'tool' ? [e.message_part.part.type] : []));
    expect(toolParts).toEqual(['tool_result']);
    early.close();
    late.close();
  });
  it('an SDK stream that reconnects mid-loop (during a tool call, and mid-step) hands every message and every part over once', async () => {
    const { tool } = await servers.add({ tool_approval: 'auto' });
    const u = await makeUser();
    const gate = mockGate();
    const tag = crypto.randomUUID().slice(0, 8);
    // The server keeps only the arguments its tool declares: a unique duration marks this call (it ends by itself).
    const ms = 300 + Math.floor(Math.random() * 200);
    const plan = toolsKnob(
      [[{ name: tool('sleep'), args: { ms } }], [{ name: tool('echo'), args: { text: tag } }]],
      'tool_text="thinking about it" gate_step=1',
    );
    const r = await call('POST', '/api/v2/chats', { token: u.token, body: { content: `reconnect ${plan} ${gate.directive(2)}` } });
    const chat = ChatSchema.parse(r.body);
    const s = streamOf(chat.id, u.token);
    const got: StreamEvent[] = [];
    s.on('message', (e) => got.push(e));
    s.on('message_part', (e) => got.push(e));
    let drops = 0;
    const drop = async () => {
      await s.until((x) => x.connected, within);
      drops += await runInDurableObject(roomOf(chat.id), (_room: ChatRoom, state) => {
        const sockets = state.getWebSockets();
        for (const ws of sockets) ws.close(1012, 'test: dropped');
        return sockets.length;
      });
    };

    // A drop while step 0's tool runs on the MCP server, then one while step 1 is held mid-stream by the gate.
    await mcpRunning('sleep');
    await drop();
    await gate.waiting(1);
    await s.until((x) => x.partial?.parts.length === 2, within);
    await drop();
    await s.until((x) => x.connected, within);
    await gate.open();
    await s.until((x) => x.status?.status === 'waiting' && x.messages.length === 6, within);
    await s.close();
    expect(drops).toBe(2);

    const stored = await messagesOf(chat.id, u.token);
    expect(stored.map((m) => m.role)).toEqual(['user', 'assistant', 'tool', 'assistant', 'tool', 'assistant']);
    // Every durable message reached the listeners once, in order.
    expect(got.flatMap((e) => (e.type === 'message' ? [e.message.id] : []))).toEqual(stored.map((m) => m.id));
    // Every step's parts reached them once, seq 0.. without a gap or a repeat, and add up to the step's messages.
    const steps: { parts: (StreamEvent & { type: 'message_part' })['message_part'][]; messages: number[] }[] = [];
    for (const e of got) {
      if (e.type === 'message_part') {
        if (e.message_part.seq === 0 || steps.length === 0 || (steps.at(-1)?.messages.length ?? 0) > 0) steps.push({ parts: [], messages: [] });
        steps.at(-1)?.parts.push(e.message_part);
      } else if (e.type === 'message') {
        steps.at(-1)?.messages.push(e.message.id);
      }
    }
    expect(steps).toHaveLength(3);
    for (const st of steps) expect(st.parts.map((p) => p.seq)).toEqual(st.parts.map((_, i) => i));
    const [s0, s1, s2] = steps;
    expect(s0?.parts.map((p) => p.part.type)).toEqual(['text', 'text', 'text', 'tool_call', 'tool_result']);
    expect(s0?.parts.at(-1)).toMatchObject({ role: 'tool', part: { type: 'tool_result', is_error: false } });
    expect(s1?.parts.map((p) => p.part.type)).toEqual(['text', 'text', 'text', 'tool_call', 'tool_result']);
    expect(s2?.parts.map((p) => ('text' in p.part ? p.part.text : '')).join('')).toBe(`Tools said: ${tag}`);
    for (const [i, st] of [s0, s1].entries()) {
      const assistant = stored[1 + i * 2];
      expect(st?.parts.map((p) => ('text' in p.part ? p.part.text : '')).join('')).toBe(textOf(assistant ?? { content: [] }));
      expect(st?.parts.find((p) => p.part.type === 'tool_call')?.part).toEqual(assistant?.content.at(-1));
      expect(st?.parts.find((p) => p.part.type === 'tool_result')?.part).toEqual(stored[2 + i * 2]?.content[0]);
    }
    // The reconnect mid-step replayed the held parts, and the SDK dropped them rather than hand them over again.
    expect(s.resumeCounts.duplicateParts).toBeGreaterThan(0);
    expect(s.resumeCounts.restarts).toBe(0);
  });
  it("a tool step Postgres cannot take waits in the outbox; once written, the loop goes on, and no tool runs twice", async () => {
    const { tool } = await servers.add({ tool_approval: 'auto' });
    const u = await makeUser();
    const tag = crypto.randomUUID().slice(0, 8);
    const gate = mockGate();
    // The first model call waits at the gate, so the chat's row is held before the step can be written.
    const plan = toolsKnob([[{ name: tool('echo'), args: { text: `one ${tag}` } }], [{ name: tool('echo'), args: { text: `two ${tag}` } }]], 'gate_step=0');
    const r = await call('POST', '/api/v2/chats', { token: u.token, body: { content: `outbox ${plan} ${gate.directive(0)}` } });
    const chatId = ChatSchema.parse(r.body).id;
    await gate.waiting(1);
    // Hold the chat's row: the first step's write (its foreign-key check) blocks on it; then Postgres stops under it.
    const locker = testDb();
    const holding = locker
      .inTx(async (tx) => {
        await tx.query('SELECT 1 FROM chats WHERE id = $1 FOR UPDATE', [chatId]);
        await gate.open();
        await lockWaiters(tx, 1);
        await postgres.pause();
      })
      .catch(() => 'cut');
    try {
      expect(await holding).toBe('cut');
      const s = streamOf(chatId, u.token);
      const seen = watch(s);
      await s.until((x) => x.status?.last_error?.kind === 'database_unavailable', { timeoutMs: 20_000 });
      expect((await roomOf(chatId).stats()).outbox).toBe(1);
      // The step's tool ran once; nothing else runs while its write waits.
      expect((await mcpCalls(tag)).map((c) => c.args)).toEqual([{ text: `one ${tag}` }]);
      await postgres.resume();
      await s.until((x) => x.status?.status === 'waiting' && x.messages.length === 6, { timeoutMs: 20_000 });
      expect(seen.statuses.at(-1)).toBe('waiting');
      await s.close();
    } finally {
      await postgres.resume().catch(() => undefined);
      await locker.close();
    }
    const msgs = await messagesOf(chatId, u.token);
    expect(msgs.map((m) => m.role)).toEqual(['user', 'assistant', 'tool', 'assistant', 'tool', 'assistant']);
    expect(textOf(msgs[5] ?? { content: [] })).toBe(`Tools said: two ${tag}`);
    expect((await mcpCalls(tag)).map((c) => c.args)).toEqual([{ text: `one ${tag}` }, { text: `two ${tag}` }]);
    expect((await roomOf(chatId).stats()).outbox).toBe(0);
  }, 60_000); // stops and starts its Postgres: on a loaded machine that alone can pass the 20 s default
});
