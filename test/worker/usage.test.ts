/**
 * Usage and cost: each answer's cost (kept when prices change), the ledger (counted once per answer, kept when
 * retention purges the chat), the reports by day, model, chat and user, CSV, and who may read what.
 */
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { runRetention } from '../../functions/services/retention';
import { insertChatMessages } from '../../sql/generated/chat_messages.queries';
import { call, makeOwner, makeUser, messagesOf, roomOf, startChat, testDb, testEnv, type TestUser } from './helpers';
import { chatOn, pricedModel } from './usage-fixtures';

const Sums = {
  input_tokens: z.number(),
  output_tokens: z.number(),
  reasoning_tokens: z.number(),
  cache_read_tokens: z.number(),
  cache_creation_tokens: z.number(),
  total_tokens: z.number(),
  cost: z.string(),
  turns: z.number(),
  unpriced_turns: z.number(),
};
const Report = z
  .object({ from: z.iso.date(), to: z.iso.date(), group_by: z.string(), totals: z.object(Sums).strict(), groups: z.array(z.looseObject(Sums)) })
  .strict();

async function report(token: string, query: string, path = '/api/v2/users/me/usage') {
  const r = await call('GET', `${path}?${query}`, { token });
  expect(r.status, r.text).toBe(200);
  return Report.parse(r.body);
}

async function send(chatId: string, u: TestUser, content: string) {
  const r = await call('POST', `/api/v2/chats/${chatId}/messages`, { token: u.token, body: { content } });
  expect(r.status, r.text).toBe(201);
  await roomOf(chatId).idle();
}

const tagOf = () => crypto.randomUUID().slice(0, 8);

describe('usage and cost', () => {
  it("costs each answer exactly with the prices in force, keeps it when they change, and reports it by model, day and chat", async () => {
    const owner = await makeOwner();
    const u = await makeUser();
    const cfg = await pricedModel(owner, { input_per_mtok: '1000.10', output_per_mtok: '2000.20' });
    const tag = tagOf();
    const chat = await chatOn(u.token, cfg, `cost ${tag}`);
    // 2 words in, 3 out ("Echo: cost <tag>"): 2 × 1000.10 + 3 × 2000.20 = 8000.8 micro-units, rounded to 8001.
    const [, first] = await messagesOf(chat.id, u.token);
    expect(first?.usage).toMatchObject({ input_tokens: 2, output_tokens: 3, cost: '0.008001' });

    const patched = await call('PATCH', `/api/v2/chats/model-configs/${cfg}`, {
      token: owner.token,
      body: { pricing: { input_per_mtok: '3', output_per_mtok: '15', cache_read_per_mtok: '0.30' } },
    });
    expect(patched.status, patched.text).toBe(200);
    expect(patched.body).toMatchObject({ pricing: { input_per_mtok: '3', output_per_mtok: '15', cache_read_per_mtok: '0.30' } });
    await send(chat.id, u, `again ${tag}`);
    // 7 words in (the history and the new message), 3 out: 7 × 3 + 3 × 15 = 66 micro-units.
    const [, , , second] = await messagesOf(chat.id, u.token);
    expect(second?.usage).toMatchObject({ input_tokens: 7, output_tokens: 3, cost: '0.000066' });
    const db = testDb();
    const stored = await db.query('SELECT cost_micros::text AS c FROM chat_messages WHERE chat_id = $1 AND role = $2 ORDER BY id', [chat.id, 'assistant']);
    await db.close();
    expect(stored.rows).toEqual([{ c: '8001' }, { c: '66' }]);

    // An answer on an unpriced model counts in tokens, without a cost, and is flagged.
    const free = await startChat(u.token, `free ${tag}`);
    const byModel = await report(u.token, 'group_by=model');
    expect(byModel.groups).toEqual([
      expect.objectContaining({ model_config_id: cfg, provider: 'openai-compat', model: 'mock-echo', turns: 2, unpriced_turns: 0, input_tokens: 9, output_tokens: 6, cost: '0.008067' }),
      expect.objectContaining({ model_config_id: testEnv.MOCK_MODEL_CONFIG_ID, turns: 1, unpriced_turns: 1, input_tokens: 2, output_tokens: 3, cost: '0.000000' }),
    ]);
    expect(byModel.totals).toEqual({
      input_tokens: 11,
      output_tokens: 9,
      reasoning_tokens: 0,
      cache_read_tokens: 0,
      cache_creation_tokens: 0,
      total_tokens: 20,
      cost: '0.008067',
      turns: 3,
      unpriced_turns: 1,
    });
    const today = new Date().toISOString().slice(0, 10);
    const byDay = await report(u.token, `group_by=day&from=${today}&to=${today}`);
    expect(byDay.groups).toEqual([expect.objectContaining({ day: today, turns: 3, cost: '0.008067' })]);
    expect(byDay.totals).toEqual(byModel.totals);
    const byChat = await report(u.token, 'group_by=chat');
    expect(byChat.groups.map((g) => [g.chat_id, g.title, g.cost])).toEqual([
      [chat.id, `cost ${tag}`, '0.008067'],
      [free.id, `free ${tag}`, '0.000000'],
    ]);
    // Days without usage: nothing.
    const empty = await report(u.token, 'from=2020-01-01&to=2020-01-31');
    expect(empty.groups).toEqual([]);
    expect(empty.totals).toMatchObject({ turns: 0, cost: '0.000000' });
  });

  it('counts an answer once when its write is applied twice (an outbox replay)', async () => {
    const u = await makeUser();
    const chat = await startChat(u.token, 'replayed');
    const db = testDb();
    const key = `turn:${crypto.randomUUID()}`;
    const usage = { input_tokens: 10, output_tokens: 5, total_tokens: 15, reasoning_tokens: 0, cache_read_tokens: 0, cache_creation_tokens: 0, cost_micros: '123' };
    const write = () =>
      insertChatMessages.run(
        {
          chat_id: chat.id,
          model_config_id: testEnv.MOCK_MODEL_CONFIG_ID,
          roles: ['assistant'],
          contents: [JSON.stringify([{ type: 'text', text: 'replayed answer' }])],
          created_bys: [''],
          usages: [JSON.stringify(usage)],
          keys: [key],
          status: null,
          last_error: null,
        },
        db,
      );
    const once = await write();
    const twice = await write();
    const sums = 'turns, unpriced_turns, input_tokens::int AS i, cost_micros::text AS c';
    const byChat = await db.query(`SELECT ${sums} FROM usage_by_chat WHERE chat_id = $1`, [chat.id]);
    const daily = await db.query(`SELECT ${sums} FROM usage_daily WHERE user_id = $1`, [u.user.id]);
    await db.close();
    expect([once.length, twice.length]).toEqual([1, 0]);
    // The chat's first (unpriced) answer, and the replayed one once.
    expect(byChat.rows).toEqual([{ turns: 2, unpriced_turns: 1, i: 11, c: '123' }]);
    expect(daily.rows).toEqual(byChat.rows);
  });

  it('keeps the totals when retention purges the chat and its messages', async () => {
    const owner = await makeOwner();
    const u = await makeUser();
    const cfg = await pricedModel(owner, { input_per_mtok: '1000000', output_per_mtok: '1000000' });
    const chat = await chatOn(u.token, cfg, `purged ${tagOf()}`);
    const before = await report(u.token, 'group_by=chat');
    expect(before.groups).toEqual([expect.objectContaining({ chat_id: chat.id, cost: '5.000000' })]);
    expect((await call('PATCH', `/api/v2/chats/${chat.id}`, { token: u.token, body: { archived: true } })).status).toBe(200);
    const db = testDb();
    await db.query("UPDATE chats SET updated_at = now() - interval '40 days' WHERE id = $1", [chat.id]);
    const run = await runRetention(db, {
      now: new Date(),
      onDeleted: async (ids) => {
        await Promise.all(ids.map((id) => roomOf(id).purge()));
      },
    });
    const left = await db.query('SELECT count(*)::int AS n FROM chat_messages WHERE chat_id = $1', [chat.id]);
    await db.close();
    expect(run.deleted).toBeGreaterThanOrEqual(1);
    expect(left.rows).toEqual([{ n: 0 }]);
    expect((await call('GET', `/api/v2/chats/${chat.id}`, { token: u.token })).status).toBe(404);
    const after = await report(u.token, 'group_by=chat');
    expect(after.groups).toEqual([expect.objectContaining({ chat_id: chat.id, title: null, cost: '5.000000', turns: 1 })]);
    expect(after.totals).toEqual(before.totals);
  });

  it('owners read everyone by user and export CSV; members read only their own', async () => {
    const owner = await makeOwner();
    const u = await makeUser();
    const other = await makeUser();
    const title = '=HYPERLINK("http://x"), "y"';
    const chat = await startChat(u.token, 'exported', { title });
    const byUser = await report(owner.token, `group_by=user&user_id=${u.user.id}`, '/api/v2/usage');
    expect(byUser.groups).toEqual([expect.objectContaining({ user_id: u.user.id, username: u.user.username, email: u.user.email, turns: 1 })]);

    const csv = await call('GET', `/api/v2/usage?group_by=chat&user_id=${u.user.id}&format=csv`, { token: owner.token });
    expect(csv.status, csv.text).toBe(200);
    expect(csv.headers.get('content-type')).toBe('text/csv; charset=utf-8');
    expect(csv.headers.get('content-disposition')).toMatch(/^attachment; filename="usage-\d{4}-\d\d-01-\d{4}-\d\d-\d\d-by-chat\.csv"$/);
    expect(csv.text.split('\r\n')).toEqual([
      'chat_id,user_id,title,input_tokens,output_tokens,reasoning_tokens,cache_read_tokens,cache_creation_tokens,total_tokens,cost,turns,unpriced_turns',
      // The title would run as a formula in a spreadsheet: it is quoted, and starts with a quote.
      `${chat.id},${u.user.id},"'=HYPERLINK(""http://x""), ""y""",1,2,0,0,0,3,0.000000,1,1`,
      '',
    ]);
    const mine = await call('GET', '/api/v2/users/me/usage?group_by=day&format=csv', { token: u.token });
    expect(mine.text.split('\r\n')[0]).toBe('day,input_tokens,output_tokens,reasoning_tokens,cache_read_tokens,cache_creation_tokens,total_tokens,cost,turns,unpriced_turns');

    // Members: 403 on the deployment's report, and their own report never shows another user's chats.
    expect((await call('GET', '/api/v2/usage', { token: u.token })).status).toBe(403);
    expect((await call('GET', '/api/v2/usage?format=csv&group_by=user', { token: u.token })).status).toBe(403);
    expect((await report(other.token, 'group_by=chat')).groups).toEqual([]);
    expect((await call('GET', '/api/v2/users/me/usage')).status).toBe(401);
    for (const q of ['group_by=user', 'from=2026-13-01', 'from=2026-02-02&to=2026-02-01', 'from=2024-01-01&to=2026-01-01', `user_id=${u.user.id}`, 'format=xml']) {
      expect((await call('GET', `/api/v2/users/me/usage?${q}`, { token: u.token })).status, q).toBe(400);
    }
    expect((await call('GET', '/api/v2/usage?user_id=nope', { token: owner.token })).status).toBe(400);
  });
});
