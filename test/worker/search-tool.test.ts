/**
 * The built-in tool search_chats (docs/chats.md "Search"): offered when the model config's `options.search_chats`
 * names an approval mode; the mock model asks for it, and the next step sees the best snippets with their chats'
 * titles, from the chat owner's chats only.
 */
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { insertChatMessages } from '../../sql/generated/chat_messages.queries';
import { insertChat } from '../../sql/generated/chats.queries';
import { makeUser, messagesOf, testDb, testEnv, textOf, uniq } from './helpers';
import { chatUntilIdle, ToolResult, toolKnob } from './tool-helpers';

const word = (): string => `w${uniq().replace(/./g, (ch) => String.fromCharCode(97 + (ch.charCodeAt(0) % 26)))}`;

/** A chat of `ownerId` holding one user message `text`, stored by the hot insert; answers its ids. */
async function seedChat(ownerId: string, title: string, text: string): Promise<{ id: string; messageId: number }> {
  const db = testDb();
  try {
    const id = crypto.randomUUID();
    await insertChat.run({ id, owner_id: ownerId, title, status: 'waiting', last_model_config_id: testEnv.MOCK_MODEL_CONFIG_ID, labels: '{}', agent_id: null }, db);
    const rows = await insertChatMessages.run(
      {
        chat_id: id,
        model_config_id: testEnv.MOCK_MODEL_CONFIG_ID,
        roles: ['user'],
        contents: [JSON.stringify([{ type: 'text', text }])],
        created_bys: [''],
        usages: ['null'],
        keys: [''],
        status: null,
        last_error: null,
        pending_tool_calls: null,
      },
      db,
    );
    return { id, messageId: Number(rows[0]?.id) };
  } finally {
    await db.close();
  }
}

/** A mock model config whose options enable search_chats with `mode`. */
async function searchConfig(mode: 'auto' | 'ask' | 'deny'): Promise<string> {
  const db = testDb();
  try {
    const r = await db.query(
      "INSERT INTO chat_model_configs (provider, model, context_limit, options) VALUES ('openai-compat', 'mock-echo', 100000, $1::jsonb) RETURNING id",
      [JSON.stringify({ search_chats: mode })],
    );
    return z.object({ id: z.string() }).parse(r.rows[0]).id;
  } finally {
    await db.close();
  }
}

const Recorded = z.array(z.object({ body: z.looseObject({ messages: z.array(z.looseObject({ role: z.string(), content: z.unknown() })), tools: z.array(z.unknown()).optional() }) }).loose());
async function modelRequests(marker: string) {
  const all = Recorded.parse(await (await fetch(`${testEnv.MOCK_LLM_URL}/__mock/requests`)).json());
  return all.filter((r) => JSON.stringify(r.body.messages).includes(marker));
}
const toolNames = (tools: unknown[] | undefined) => (tools ?? []).map((t) => z.object({ function: z.object({ name: z.string() }) }).parse(t).function.name);

describe('the search_chats tool', () => {
  it('answers the best snippets of the owner’s chats with their titles, and the next step sees them', async () => {
    const [u, other] = [await makeUser(), await makeUser()];
    const w = word();
    const mine = await seedChat(u.user.id, 'Deploy notes', `we fixed the <b>${w}</b> outage`);
    await seedChat(other.user.id, 'Not yours', `their ${w} outage`);
    const config = await searchConfig('auto');
    const { chat, status } = await chatUntilIdle(u.token, `look it up ${toolKnob('search_chats', { query: `${w} outage -look` })}`, { model_config_id: config });
    expect(status).toBe('waiting');
    const msgs = await messagesOf(chat.id, u.token);
    expect(msgs.map((m) => m.role)).toEqual(['user', 'assistant', 'tool', 'assistant']);
    const result = ToolResult.parse(msgs[2]?.content[0]);
    const text = `Deploy notes (user, ${new Date().toISOString().slice(0, 10)}): we fixed the <b>«${w}»</b> «outage»`;
    expect(result).toMatchObject({ name: 'search_chats', is_error: false, result: { content: [{ type: 'text', text }] } });
    expect(result.result).toMatchObject({ structuredContent: { results: [{ chat_title: 'Deploy notes', chat_id: mine.id, message_id: mine.messageId, role: 'user' }] } });
    // (`-look` leaves out this chat's own message, which holds the query in its knob.)
    // The next model call got the snippets as the tool's answer.
    const reqs = await modelRequests(w);
    expect(reqs).toHaveLength(2);
    expect(toolNames(reqs[0]?.body.tools)).toContain('search_chats');
    expect(JSON.stringify(reqs[1]?.body.messages.at(-1))).toContain(JSON.stringify(text).slice(1, -1));
    expect(textOf(msgs[3] ?? { content: [] })).toBe(`Tools said: ${text}`);
  });

  it('is not offered without the option, and follows the approval mode ("deny")', async () => {
    const u = await makeUser();
    const w = word();
    await seedChat(u.user.id, 'Hidden', `a ${w} here`);
    const plain = await chatUntilIdle(u.token, `plain ${w}-one ${toolKnob('search_chats', { query: w })}`);
    expect(plain.status).toBe('waiting');
    const [first] = await modelRequests(`${w}-one`);
    expect(toolNames(first?.body.tools)).not.toContain('search_chats');
    const unknown = ToolResult.parse((await messagesOf(plain.chat.id, u.token))[2]?.content[0]);
    expect(unknown.is_error).toBe(true);

    const denied = await chatUntilIdle(u.token, `deny ${w}-two ${toolKnob('search_chats', { query: w })}`, { model_config_id: await searchConfig('deny') });
    const r = ToolResult.parse((await messagesOf(denied.chat.id, u.token))[2]?.content[0]);
    expect(r).toMatchObject({ name: 'search_chats', is_error: true });
    expect(JSON.stringify(r.result)).toContain('This model config does not allow the tool search_chats');
    expect(JSON.stringify(r.result)).not.toContain('Hidden');
  });
});
