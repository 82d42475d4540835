/** `GET /chats/{id}/export` and `POST /chats/import` (docs/conversation-tools.md): downloads, round trips, clear 400s. */
import { describe, expect, it } from 'vitest';
import { call, ErrorBody, makeUser, messagesOf, sdk, startChat, testDb } from './helpers';

const T0 = Date.parse('2026-01-02T03:04:05.000Z');
const at = (i: number) => new Date(T0 + i * 1000).toISOString();

/** An export holding every part kind: text (with code), reasoning, a tool call and its result. */
function richExport(title: string) {
  return {
    version: 1 as const,
    exported_at: at(100),
    chat: { id: crypto.randomUUID(), title, labels: { team: 'x' }, created_at: at(0) },
    messages: [
      { role: 'user' as const, content: [{ type: 'text' as const, text: 'use the tool\n```js\nconsole.log(1)\n```' }], created_at: at(1) },
      {
        role: 'assistant' as const,
        content: [
          { type: 'reasoning' as const, text: 'thinking hard' },
          { type: 'tool_call' as const, tool_call_id: 'c1', name: 'srv__add', args: { a: 1, b: 2 } },
        ],
        created_at: at(2),
      },
      {
        role: 'tool' as const,
        content: [{ type: 'tool_result' as const, tool_call_id: 'c1', name: 'srv__add', result: { content: [{ type: 'text', text: '3' }] }, is_error: false }],
        created_at: at(3),
      },
      { role: 'assistant' as const, content: [{ type: 'text' as const, text: 'It is 3.' }], created_at: at(4) },
    ],
  };
}

/** A chat of `token`'s made from `richExport`. */
async function richChat(token: string) {
  const source = richExport('Adding numbers');
  return { source, chat: await sdk(token).importChat(source) };
}

describe('export and import', () => {
  it('imports every part kind, and exports them back exactly', async () => {
    const u = await makeUser();
    const { source, chat } = await richChat(u.token);
    expect(chat).toMatchObject({ owner_id: u.user.id, title: 'Adding numbers', status: 'waiting', labels: { team: 'x' }, forked_from: null });
    expect(chat.id).not.toBe(source.chat.id);
    const out = await sdk(u.token).exportChat(chat.id);
    expect(out).toMatchObject({ version: 1, chat: { id: chat.id, title: 'Adding numbers', labels: { team: 'x' }, forked_from: null } });
    // Model configs are another deployment's: not imported.
    expect(out.messages).toEqual(source.messages.map((m) => ({ ...m, model_config_id: null })));
  });

  it("exports a chat as a JSON download that imports back as a new chat of the caller's, part for part", async () => {
    const u = await makeUser();
    const chat = await startChat(u.token, 'plain text [[mock reasoning="thinking hard"]]');
    const r = await call('GET', `/api/v2/chats/${chat.id}/export?format=json`, { token: u.token });
    expect(r.status).toBe(200);
    expect(r.headers.get('content-disposition')).toBe('attachment; filename="plain-text-mock-reasoningthinking-hard.json"');
    const original = await messagesOf(chat.id, u.token);
    expect(original.map((m) => m.content.map((p) => p.type))).toEqual([['text'], ['reasoning', 'text']]);
    const other = await makeUser();
    const exported = await sdk(u.token).exportChat(chat.id);
    expect(r.body).toMatchObject({ version: 1, chat: exported.chat, messages: exported.messages });
    const imported = await sdk(other.token).importChat(exported);
    expect(imported).toMatchObject({ owner_id: other.user.id, title: chat.title, status: 'waiting' });
    const copy = await messagesOf(imported.id, other.token);
    expect(copy.map((m) => ({ role: m.role, content: m.content, created_at: m.created_at }))).toEqual(
      original.map((m) => ({ role: m.role, content: m.content, created_at: m.created_at })),
    );
    expect(copy.every((m) => m.model_config_id === null)).toBe(true);
    // The original is the first user's still, untouched.
    expect(await messagesOf(chat.id, u.token)).toEqual(original);
  });

  it('exports Markdown: the title, roles as headings, code kept, tool calls summarised', async () => {
    const u = await makeUser();
    const { chat } = await richChat(u.token);
    const r = await call('GET', `/api/v2/chats/${chat.id}/export?format=markdown`, { token: u.token });
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toBe('text/markdown; charset=utf-8');
    expect(r.headers.get('content-disposition')).toMatch(/\.md"$/);
    const md = await sdk(u.token).exportMarkdown(chat.id);
    expect(md).toBe(r.text);
    const body = md.slice(md.indexOf('\n## '));
    expect(md.startsWith(`# ${chat.title}\n`)).toBe(true);
    expect(body).toBe(
      [
        '',
        '## User',
        '',
        'use the tool\n```js\nconsole.log(1)\n```',
        '',
        '## Assistant',
        '',
        '> **Reasoning**\n>\n> thinking hard',
        '',
        '**Tool call** `srv__add`\n\n```json\n{\n  "a": 1,\n  "b": 2\n}\n```',
        '',
        '## Tool',
        '',
        '**Tool result** `srv__add`: {"content":[{"text":"3","type":"text"}]}',
        '',
        '## Assistant',
        '',
        'It is 3.',
        '',
      ].join('\n'),
    );
  });

  it("answers 404 for another user's chat and 400 for an unknown format", async () => {
    const u = await makeUser();
    const stranger = await makeUser();
    const chat = await startChat(u.token, 'mine');
    expect((await call('GET', `/api/v2/chats/${chat.id}/export`, { token: stranger.token })).status).toBe(404);
    expect((await call('GET', `/api/v2/chats/${chat.id}/export?format=pdf`, { token: u.token })).status).toBe(400);
  });

  it('refuses a bad import with a 400 that names the field, and stores nothing', async () => {
    const u = await makeUser();
    const chat = await startChat(u.token, 'source');
    const good = await sdk(u.token).exportChat(chat.id);
    const cases: [string, unknown, string][] = [
      ['an unknown version', { ...good, version: 2 }, 'version'],
      ['no messages', { ...good, messages: [] }, 'messages'],
      ['a bad role', { ...good, messages: [{ ...good.messages[0], role: 'wizard' }] }, 'messages.0.role'],
      ['a text part without text', { ...good, messages: [{ ...good.messages[0], content: [{ type: 'text' }] }] }, 'messages.0.content.0.type'],
      ['a bad date', { ...good, messages: [{ ...good.messages[0], created_at: 'yesterday' }] }, 'messages.0.created_at'],
      ['a long title', { ...good, chat: { ...good.chat, title: 't'.repeat(257) } }, 'chat.title'],
      ['not an object', [1, 2], ''],
    ];
    for (const [name, body, field] of cases) {
      const r = await call('POST', '/api/v2/chats/import', { token: u.token, body });
      expect(r.status, name).toBe(400);
      const err = ErrorBody.parse(r.body);
      if (field !== '') expect(err.validations?.map((v) => v.field), name).toContain(field);
    }
    const big = await call('POST', '/api/v2/chats/import', { token: u.token, rawBody: JSON.stringify({ ...good, pad: 'x'.repeat(1_100_000) }), headers: { 'content-type': 'application/json' } });
    expect(big.status).toBe(413);
    const db = testDb();
    try {
      const rows = await db.query('SELECT count(*)::int AS n FROM chats WHERE owner_id = $1', [u.user.id]);
      expect(rows.rows).toEqual([{ n: 1 }]);
    } finally {
      await db.close();
    }
  });
});
