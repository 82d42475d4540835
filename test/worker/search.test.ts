/**
 * Search (docs/chats.md "Search"): GET /chats/search, GET /chats?q= and the SDK's searchChats/chats({q}), against the
 * real index (migration 000013). Every test searches for words made unique per test, so the shared database's other
 * chats never match.
 */
import { describe, expect, it } from 'vitest';
import { insertChatMessages } from '../../sql/generated/chat_messages.queries';
import { insertChat } from '../../sql/generated/chats.queries';
import type { SearchResult } from '../../sdk/src/types';
import { call, ErrorBody, makeUser, mockGate, roomOf, sdk, testDb, testEnv, uniq } from './helpers';

/** A word no other test uses: letters only, so the parser reads it as one plain word. */
const word = (): string =>
  `w${uniq().replace(/./g, (ch) => String.fromCharCode(97 + (ch.charCodeAt(0) % 26)))}`;

type Msg = { role: 'user' | 'assistant' | 'tool' | 'system'; text?: string; content?: unknown[] };

/** A chat of `ownerId` with these messages, stored by the hot insert itself (InsertChatMessages). */
async function seedChat(ownerId: string, title: string, messages: Msg[], o: { archived?: boolean } = {}) {
  const db = testDb();
  try {
    const id = crypto.randomUUID();
    await insertChat.run(
      { id, owner_id: ownerId, title, status: 'waiting', last_model_config_id: testEnv.MOCK_MODEL_CONFIG_ID, labels: '{}', agent_id: null },
      db,
    );
    if (o.archived) await db.query('UPDATE chats SET archived = true WHERE id = $1', [id]);
    const rows = await insertChatMessages.run(
      {
        chat_id: id,
        model_config_id: testEnv.MOCK_MODEL_CONFIG_ID,
        roles: messages.map((m) => m.role),
        contents: messages.map((m) => JSON.stringify(m.content ?? [{ type: 'text', text: m.text ?? '' }])),
        created_bys: messages.map(() => ''),
        usages: messages.map(() => 'null'),
        keys: messages.map(() => ''),
        status: null,
        last_error: null,
        pending_tool_calls: null,
      },
      db,
    );
    return { id, ids: rows.map((r) => Number(r.id)) };
  } finally {
    await db.close();
  }
}

const search = async (token: string, q: string, o: { limit?: number; offset?: number } = {}): Promise<SearchResult[]> =>
  (await sdk(token).searchChats({ q, ...o })).results;
const ids = (rs: SearchResult[]) => rs.map((r) => r.message_id);

describe('GET /chats/search', () => {
  it('finds only the caller’s own messages, with the chat, role, time and a marked snippet', async () => {
    const [a, b] = [await makeUser(), await makeUser()];
    const w = word();
    const mine = await seedChat(a.user.id, 'Mine', [{ role: 'user', text: `tell me about ${w}` }]);
    await seedChat(b.user.id, 'Theirs', [{ role: 'user', text: `tell me about ${w}` }]);
    const rs = await search(a.token, w);
    expect(rs).toEqual([
      {
        chat_id: mine.id,
        chat_title: 'Mine',
        archived: false,
        message_id: mine.ids[0],
        role: 'user',
        snippet: `tell me about <mark>${w}</mark>`,
        created_at: rs[0]?.created_at,
      },
    ]);
    expect(rs[0]?.created_at).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    const theirs = await search(b.token, w);
    expect(theirs.map((r) => r.chat_title)).toEqual(['Theirs']);
  });

  it('takes web-search syntax: words (all of them), "a phrase", -word and or', async () => {
    const u = await makeUser();
    const [x, y, z] = [word(), word(), word()];
    const c = await seedChat(u.user.id, 'Syntax', [
      { role: 'user', text: `${x} ${y}` }, // 0: x y, adjacent
      { role: 'assistant', text: `${y} then ${x}` }, // 1: both, not as the phrase "x y"
      { role: 'user', text: `${x} alone` }, // 2: x only
      { role: 'assistant', text: `${z} alone` }, // 3: z only
    ]);
    const [m0, m1, m2, m3] = c.ids;
    const sorted = (rs: SearchResult[]) => ids(rs).sort((p, q) => p - q);
    expect(sorted(await search(u.token, `${x} ${y}`))).toEqual([m0, m1]);
    expect(sorted(await search(u.token, `"${x} ${y}"`))).toEqual([m0]);
    expect(sorted(await search(u.token, `${x} -${y}`))).toEqual([m2]);
    expect(sorted(await search(u.token, `${y} or ${z}`))).toEqual([m0, m1, m3]);
    expect(sorted(await search(u.token, x.toUpperCase()))).toEqual([m0, m1, m2]);
    // Punctuation alone is no word: nothing matches, and it is no error.
    expect(await search(u.token, '!!! ---')).toEqual([]);
  });

  it('ranks the better match first, then the newest', async () => {
    const u = await makeUser();
    const [x, y] = [word(), word()];
    const c = await seedChat(u.user.id, 'Rank', [
      { role: 'user', text: `${x} once` },
      { role: 'assistant', text: `${x} ${y} ${x} ${y}` },
      { role: 'user', text: `${x} again` },
    ]);
    const [m0, m1, m2] = c.ids;
    // m1 holds both words, twice; m0 and m2 tie on rank, and the newer (m2, inserted later in the same batch: the
    // same created_at, a higher id) comes first.
    expect(ids(await search(u.token, `${x} or ${y}`))).toEqual([m1, m2, m0]);
  });

  it('finds and ranks a long message (outside the covering index) with the short ones, across pages', async () => {
    const u = await makeUser();
    const x = word();
    // ~400 other words: a vector of several KB, over the 2,000 bytes of chat_messages_search_cover (migration 000020).
    const filler = Array.from({ length: 400 }, (_, i) => `f${word()}${i}`.replace(/\d/g, (d) => String.fromCharCode(97 + Number(d))));
    const c = await seedChat(u.user.id, 'Long', [
      { role: 'user', text: `${x} once` },
      { role: 'assistant', text: `${x} ${filler.join(' ')} ${x} and ${x}` },
      { role: 'user', text: `${x} and ${x}` },
    ]);
    const [m0, m1, m2] = c.ids;
    const db = testDb();
    try {
      const rows = (await db.query('SELECT id, search_covered FROM chat_messages WHERE chat_id = $1 ORDER BY id', [c.id]))
        .rows as { id: string; search_covered: boolean | null }[];
      expect(rows.map((r) => [Number(r.id), r.search_covered])).toEqual([[m0, true], [m1, false], [m2, true]]);
    } finally {
      await db.close();
    }
    // Three, two, one occurrence: the long message first, whichever index each one came from.
    expect(ids(await search(u.token, x))).toEqual([m1, m2, m0]);
    expect(ids(await search(u.token, x, { limit: 1, offset: 1 }))).toEqual([m2]);
    expect(ids(await search(u.token, x, { limit: 2, offset: 1 }))).toEqual([m2, m0]);
  });

  it('escapes HTML in the snippet: only <mark> is markup', async () => {
    const u = await makeUser();
    const w = word();
    await seedChat(u.user.id, 'Html', [{ role: 'user', text: `say <script>alert("${w}")</script> & <b>bold</b> it's &amp; end` }]);
    const [r] = await search(u.token, w);
    expect(r?.snippet).toBe(
      `say &lt;script&gt;alert(&quot;<mark>${w}</mark>&quot;)&lt;/script&gt; &amp; &lt;b&gt;bold&lt;/b&gt; it&#39;s &amp;amp; end`,
    );
  });

  it('matches accents either way, and Chinese or Japanese words as written', async () => {
    const u = await makeUser();
    const w = word();
    const c = await seedChat(u.user.id, 'Langs', [
      { role: 'user', text: `crème brûlée ${w}` },
      { role: 'assistant', text: `我们在东京讨论了${w}的部署` },
      { role: 'user', text: `京东 ${w}` },
    ]);
    const [fr, zh, rev] = c.ids;
    expect(ids(await search(u.token, `creme ${w}`))).toEqual([fr]);
    expect(ids(await search(u.token, `CRÈME ${w}`))).toEqual([fr]);
    // "东京" is a phrase of its characters: "京东" (the same characters, the other way round) does not match it.
    const tokyo = await search(u.token, `东京 ${w}`);
    expect(ids(tokyo)).toEqual([zh]);
    expect(tokyo[0]?.snippet).toBe(`我们在<mark>东京</mark>讨论了<mark>${w}</mark>的部署`);
    expect(ids(await search(u.token, `部署 -东京 ${w}`))).toEqual([]);
    expect(ids(await search(u.token, `"京东" ${w}`))).toEqual([rev]);
  });

  it('searches the text parts of user and assistant messages only: not reasoning, tool calls, tool results or system', async () => {
    const u = await makeUser();
    const w = word();
    const c = await seedChat(u.user.id, 'Parts', [
      { role: 'system', text: `system ${w}` },
      {
        role: 'assistant',
        content: [
          { type: 'reasoning', text: `thinking ${w}` },
          { type: 'tool_call', tool_call_id: 't1', name: 'lookup', args: { q: w } },
        ],
      },
      { role: 'tool', content: [{ type: 'tool_result', tool_call_id: 't1', name: 'lookup', result: w, is_error: false }] },
      { role: 'assistant', content: [{ type: 'reasoning', text: 'hidden' }, { type: 'text', text: `answer ${w}` }] },
    ]);
    const rs = await search(u.token, w);
    expect(rs.map((r) => [r.message_id, r.role, r.snippet])).toEqual([[c.ids[3], 'assistant', `answer <mark>${w}</mark>`]]);
  });

  it('never finds an edited-away message, and finds the edit', async () => {
    const u = await makeUser();
    const [before, after] = [word(), word()];
    const c = sdk(u.token);
    const chat = await c.createChat({ content: `first ${before}` });
    await roomOf(chat.id).idle();
    expect((await search(u.token, before)).map((r) => r.role)).toEqual(['assistant', 'user']);
    const { messages } = await c.listMessages(chat.id);
    const first = messages[0];
    if (!first) throw new Error('no first message');
    await c.editMessage(chat.id, first.id, { content: `second ${after}` });
    await roomOf(chat.id).idle();
    // The edit rewrote the first message and soft-deleted the old answer: the old words are gone.
    expect(await search(u.token, before)).toEqual([]);
    expect((await search(u.token, after)).map((r) => [r.message_id === first.id, r.role])).toEqual([
      [false, 'assistant'],
      [true, 'user'],
    ]);
  });

  it('finds a message as soon as the POST that stored it has answered', async () => {
    const u = await makeUser();
    const [w, v] = [word(), word()];
    const gate = mockGate();
    const c = sdk(u.token);
    const chat = await c.createChat({ content: `${w} ${gate.directive()}` });
    // The turn is held at the gate: only the user message exists, and it is already found.
    expect((await search(u.token, w)).map((r) => [r.chat_id, r.role])).toEqual([[chat.id, 'user']]);
    await gate.waiting(1);
    await gate.open();
    await roomOf(chat.id).idle();
    const posted = await c.sendMessage(chat.id, { content: v });
    if (!('message' in posted)) throw new Error('not posted');
    expect(ids(await search(u.token, v))).toContain(posted.message.id);
    await roomOf(chat.id).idle();
  });

  it('covers archived chats, saying so', async () => {
    const u = await makeUser();
    const w = word();
    const c = await seedChat(u.user.id, 'Old', [{ role: 'user', text: w }], { archived: true });
    expect((await search(u.token, w)).map((r) => [r.chat_id, r.archived])).toEqual([[c.id, true]]);
  });

  it('pages with limit and offset', async () => {
    const u = await makeUser();
    const w = word();
    const c = await seedChat(
      u.user.id,
      'Pages',
      Array.from({ length: 5 }, (_, i) => ({ role: i % 2 ? ('assistant' as const) : ('user' as const), text: `${w} ${i}` })),
    );
    const newestFirst = [...c.ids].reverse();
    expect(ids(await search(u.token, w, { limit: 2 }))).toEqual(newestFirst.slice(0, 2));
    expect(ids(await search(u.token, w, { limit: 2, offset: 2 }))).toEqual(newestFirst.slice(2, 4));
    expect(ids(await search(u.token, w, { limit: 2, offset: 4 }))).toEqual(newestFirst.slice(4));
    expect(ids(await search(u.token, w, { offset: 5 }))).toEqual([]);
    expect(ids(await search(u.token, w))).toEqual(newestFirst);
  });

  it.each([
    ['', 'q'],
    ['q=', 'q'],
    ['q=%20%20', 'q'],
    [`q=${'a'.repeat(1001)}`, 'q'],
    ['q=x&limit=0', 'limit'],
    ['q=x&limit=101', 'limit'],
    ['q=x&limit=ten', 'limit'],
    ['q=x&limit=1.5', 'limit'],
    ['q=x&offset=-1', 'offset'],
    ['q=x&offset=10001', 'offset'],
  ])('rejects ?%s with 400 naming %s', async (query, field) => {
    const u = await makeUser();
    const r = await call('GET', `/api/v2/chats/search?${query}`, { token: u.token });
    expect(r.status).toBe(400);
    expect(ErrorBody.parse(r.body).validations?.map((v) => v.field)).toEqual([field]);
  });

  it('accepts a q of exactly 1,000 characters, and needs a signed-in caller', async () => {
    const u = await makeUser();
    expect((await call('GET', `/api/v2/chats/search?q=${'a'.repeat(1000)}`, { token: u.token })).status).toBe(200);
    expect((await call('GET', '/api/v2/chats/search?q=x')).status).toBe(401);
  });
});

describe('GET /chats?q=', () => {
  it('lists only the caller’s chats whose title or live messages match, most recently active first', async () => {
    const [a, b] = [await makeUser(), await makeUser()];
    const w = word();
    const byTitle = await seedChat(a.user.id, `About ${w}`, [{ role: 'user', text: 'nothing here' }]);
    const byMessage = await seedChat(a.user.id, 'Other', [{ role: 'assistant', text: `it is ${w}` }]);
    await seedChat(a.user.id, 'Unrelated', [{ role: 'user', text: 'no match' }]);
    const archived = await seedChat(a.user.id, 'Archived', [{ role: 'user', text: w }], { archived: true });
    await seedChat(b.user.id, `Theirs ${w}`, [{ role: 'user', text: w }]);
    const list = async (o: { archived?: boolean } = {}) => {
      const out: string[] = [];
      for await (const chat of sdk(a.token).chats({ q: w, ...o })) out.push(chat.id);
      return out;
    };
    expect(await list()).toEqual([byMessage.id, byTitle.id]);
    expect(await list({ archived: true })).toEqual([archived.id]);
    expect((await call('GET', '/api/v2/chats?q=', { token: a.token })).status).toBe(400);
  });
});
