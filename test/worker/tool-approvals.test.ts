/**
 * Tool calls that wait for the chat owner's approval: status requires_action with chat.pending_tool_calls, in Postgres,
 * so the wait survives the object's eviction; POST /chats/{id}/tool-calls/{tool_call_id} decides.
 */
import { abortAllDurableObjects } from 'cloudflare:test';
import { afterEach, describe, expect, it } from 'vitest';
import { Chat as ChatSchema } from '../../functions/core/shapes/chat';
import { call, ErrorBody, makeUser, messagesOf, roomOf, sdk, testDb, textOf } from './helpers';
import { chatUntilIdle, mcpCalls, mcpRunning, mcpServers, resultTextOf, storedMessages, ToolCall, ToolResult, toolKnob, toolsKnob } from './tool-helpers';

const servers = mcpServers();
afterEach(async () => {
  await servers.cleanup();
});

const getChat = async (id: string, token: string) => ChatSchema.parse(await sdk(token).getChat(id));
const decide = (chatId: string, callId: string, token: string, body: unknown) =>
  call('POST', `/api/v2/chats/${chatId}/tool-calls/${encodeURIComponent(callId)}`, { token, body });

describe('tool calls that wait for approval', () => {
  it('ask, evicted while waiting, then approve: the call runs once, a message sent meanwhile waits its turn', async () => {
    const { tool, server } = await servers.add({ tool_approval: 'ask' });
    const u = await makeUser();
    const tag = crypto.randomUUID().slice(0, 8);
    const { chat, status } = await chatUntilIdle(u.token, `please ${toolKnob(tool('echo'), { text: tag })}`);
    expect(status).toBe('requires_action');
    const waiting = await getChat(chat.id, u.token);
    expect(waiting.status).toBe('requires_action');
    const callId = waiting.pending_tool_calls[0]?.tool_call_id ?? '';
    expect(waiting.pending_tool_calls).toEqual([{ tool_call_id: callId, name: tool('echo'), args: { text: tag }, server: server.name }]);
    expect(callId).not.toBe('');
    // The assistant message with the call is durable; nothing ran.
    expect((await messagesOf(chat.id, u.token)).map((m) => m.role)).toEqual(['user', 'assistant']);
    expect(await mcpCalls(tag)).toEqual([]);

    await abortAllDurableObjects();
    // A new object reads the wait from Postgres: still waiting, still busy (a message queues).
    expect(await getChat(chat.id, u.token)).toMatchObject({ status: 'requires_action', pending_tool_calls: waiting.pending_tool_calls });
    const queued = await call('POST', `/api/v2/chats/${chat.id}/messages`, { token: u.token, body: { content: 'after the tool' } });
    expect(queued.status, queued.text).toBe(202);

    // Through the SDK: 200 and the chat after the decision.
    expect(await sdk(u.token).decideToolCall(chat.id, callId, { decision: 'approve' })).toMatchObject({ pending_tool_calls: [] });
    expect(await roomOf(chat.id).idle()).toBe('waiting');
    // Decided already: 409, and nothing runs twice.
    expect((await decide(chat.id, callId, u.token, { decision: 'approve' })).status).toBe(409);

    const msgs = await messagesOf(chat.id, u.token);
    expect(msgs.map((m) => m.role)).toEqual(['user', 'assistant', 'tool', 'assistant', 'user', 'assistant']);
    expect(ToolResult.parse(msgs[2]?.content[0])).toMatchObject({ tool_call_id: callId, is_error: false });
    expect(textOf(msgs[3] ?? { content: [] })).toBe(`Tools said: ${tag}`);
    expect(textOf(msgs[5] ?? { content: [] })).toBe('Echo: after the tool');
    expect(await mcpCalls(tag)).toHaveLength(1);
    const rows = await storedMessages(chat.id);
    expect(rows[2]?.key).toMatch(new RegExp(`^turn:[0-9a-f-]{36}:tool:${callId}$`));
  });

  it('ask, evicted, then deny with a reason: the model sees the denial and answers', async () => {
    const { tool } = await servers.add({ tool_approval: 'ask' });
    const u = await makeUser();
    const tag = crypto.randomUUID().slice(0, 8);
    const { chat } = await chatUntilIdle(u.token, `deny me ${toolKnob(tool('echo'), { text: tag })}`);
    const callId = (await getChat(chat.id, u.token)).pending_tool_calls[0]?.tool_call_id ?? '';
    await abortAllDurableObjects();
    expect((await sdk(u.token).decideToolCall(chat.id, callId, { decision: 'deny', reason: 'not today' })).status).toBe('running');
    expect(await roomOf(chat.id).idle()).toBe('waiting');
    const msgs = await messagesOf(chat.id, u.token);
    expect(msgs.map((m) => m.role)).toEqual(['user', 'assistant', 'tool', 'assistant']);
    const result = ToolResult.parse(msgs[2]?.content[0]);
    expect(result).toMatchObject({ tool_call_id: callId, is_error: true });
    expect(resultTextOf(result)).toBe('The user denied this tool call. Reason: not today');
    expect(textOf(msgs[3] ?? { content: [] })).toBe('Tools said: The user denied this tool call. Reason: not today');
    expect(await mcpCalls(tag)).toEqual([]);
  });

  it('two calls waiting: one approved while the other waits, then the other denied; a deny-mode tool is refused at once', async () => {
    const ask = await servers.add({ tool_approval: 'ask' });
    const deny = await servers.add({ tool_approval: 'deny' });
    const u = await makeUser();
    const tag = crypto.randomUUID().slice(0, 8);
    const plan = toolsKnob([
      [
        { name: ask.tool('echo'), args: { text: `one ${tag}` } },
        { name: ask.tool('echo'), args: { text: `two ${tag}` } },
        { name: deny.tool('echo'), args: { text: `three ${tag}` } },
      ],
    ]);
    const { chat, status } = await chatUntilIdle(u.token, `three calls ${plan}`);
    expect(status).toBe('requires_action');
    const [one, two] = (await getChat(chat.id, u.token)).pending_tool_calls;
    expect([one?.args, two?.args]).toEqual([{ text: `one ${tag}` }, { text: `two ${tag}` }]);
    // The deny-mode call was answered with the step.
    const early = await messagesOf(chat.id, u.token);
    expect(early.map((m) => m.role)).toEqual(['user', 'assistant', 'tool']);
    expect(resultTextOf(early[2]?.content[0])).toContain('"deny"');

    expect((await decide(chat.id, one?.tool_call_id ?? '', u.token, { decision: 'approve' })).status).toBe(200);
    expect(await roomOf(chat.id).idle()).toBe('requires_action');
    expect((await getChat(chat.id, u.token)).pending_tool_calls.map((c) => c.tool_call_id)).toEqual([two?.tool_call_id]);
    expect((await decide(chat.id, two?.tool_call_id ?? '', u.token, { decision: 'deny' })).status).toBe(200);
    expect(await roomOf(chat.id).idle()).toBe('waiting');
    const msgs = await messagesOf(chat.id, u.token);
    expect(msgs.map((m) => m.role)).toEqual(['user', 'assistant', 'tool', 'tool', 'tool', 'assistant']);
    expect(msgs.slice(2, 5).map((m) => ToolResult.parse(m.content[0]).is_error)).toEqual([true, false, true]);
    expect((await mcpCalls(tag)).map((c) => c.args)).toEqual([{ text: `one ${tag}` }]);
  });

  it('409 for a call that is not waiting, 404 for another user, 400 for a bad decision', async () => {
    const { tool } = await servers.add({ tool_approval: 'ask' });
    const u = await makeUser();
    const other = await makeUser();
    const { chat } = await chatUntilIdle(u.token, `hold ${toolKnob(tool('echo'), { text: 'x' })}`);
    const callId = (await getChat(chat.id, u.token)).pending_tool_calls[0]?.tool_call_id ?? '';
    const unknown = await decide(chat.id, 'call_nope', u.token, { decision: 'approve' });
    expect(unknown.status).toBe(409);
    expect(ErrorBody.parse(unknown.body).message).toBe('This tool call is not waiting for approval.');
    expect((await decide(chat.id, callId, other.token, { decision: 'approve' })).status).toBe(404);
    expect((await call('GET', `/api/v2/chats/${chat.id}/tools`, { token: other.token })).status).toBe(404);
    expect((await decide(chat.id, callId, u.token, { decision: 'maybe' })).status).toBe(400);
    expect((await decide(chat.id, callId, u.token, { decision: 'approve', extra: 1 })).status).toBe(400);
    // Still waiting: nothing above changed it.
    expect((await getChat(chat.id, u.token)).status).toBe('requires_action');
    // A chat that waits for nothing: 409.
    const plain = await chatUntilIdle(u.token, 'no tools here');
    expect((await decide(plain.chat.id, callId, u.token, { decision: 'approve' })).status).toBe(409);
  });

  it('interrupt ends a turn that waits for approval, even after an eviction: its calls are answered as stopped', async () => {
    const { tool } = await servers.add({ tool_approval: 'ask' });
    const u = await makeUser();
    const { chat } = await chatUntilIdle(u.token, `stop ${toolKnob(tool('echo'), { text: 'never' })}`);
    await abortAllDurableObjects();
    const r = await call('POST', `/api/v2/chats/${chat.id}/interrupt`, { token: u.token });
    expect(r.status).toBe(202);
    expect(r.body).toEqual({ status: 'waiting' });
    expect(await getChat(chat.id, u.token)).toMatchObject({ status: 'waiting', pending_tool_calls: [], last_error: null });
    const msgs = await messagesOf(chat.id, u.token);
    expect(msgs.map((m) => m.role)).toEqual(['user', 'assistant', 'tool']);
    const callId = ToolCall.parse(msgs[1]?.content[0]).tool_call_id;
    expect(ToolResult.parse(msgs[2]?.content[0])).toMatchObject({ tool_call_id: callId, is_error: true });
    expect(resultTextOf(msgs[2]?.content[0])).toBe('The turn was stopped before this tool call was approved or denied.');
  });

  it('interrupt during an approved call stops it; the calls still waiting are answered as stopped', async () => {
    const { tool } = await servers.add({ tool_approval: 'ask' });
    const u = await makeUser();
    const ms = 2000 + Math.floor(Math.random() * 900);
    const plan = toolsKnob([[{ name: tool('sleep'), args: { ms } }, { name: tool('echo'), args: { text: 'later' } }]]);
    const { chat } = await chatUntilIdle(u.token, `approve then stop ${plan}`);
    const [sleep] = (await getChat(chat.id, u.token)).pending_tool_calls;
    expect((await decide(chat.id, sleep?.tool_call_id ?? '', u.token, { decision: 'approve' })).status).toBe(200);
    await mcpRunning('sleep');
    expect((await call('POST', `/api/v2/chats/${chat.id}/interrupt`, { token: u.token })).status).toBe(202);
    expect(await roomOf(chat.id).idle()).toBe('waiting');
    const msgs = await messagesOf(chat.id, u.token);
    expect(msgs.map((m) => m.role)).toEqual(['user', 'assistant', 'tool', 'tool']);
    expect(msgs.slice(2).map((m) => resultTextOf(m.content[0]))).toEqual([
      'The tool call was interrupted.',
      'The turn was stopped before this tool call was approved or denied.',
    ]);
    const db = testDb();
    const row = await db.query('SELECT status::text AS status, pending_tool_calls FROM chats WHERE id = $1', [chat.id]);
    await db.close();
    expect(row.rows[0]).toEqual({ status: 'waiting', pending_tool_calls: [] });
  });
});
