/**
 * Titles written by a model (docs/conversation-tools.md): after a chat's first answer the title model's title arrives
 * as a `title` event and in GET, its tokens and cost are counted as usage, the owner's own title is kept, and a failing
 * title model leaves the title. Titles are a deployment setting every chat sees (the test databases start with them
 * off): this suite turns them on for itself and runs isolated (test/isolated-suites.ts).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { call, ErrorBody, makeOwner, makeUser, mockGate, roomOf, sdk, startChat, streamOf, testDb, testEnv, watch, within } from './helpers';
import { pricedModel } from './usage-fixtures';
import { invalidateModelCache } from '../../functions/core/model-resolve';

const TITLE_INSTRUCTIONS = 'You write the title of a chat.';
const Requests = z.array(
  z.object({ body: z.object({ model: z.string(), messages: z.array(z.object({ role: z.string(), content: z.unknown() }).loose()) }).loose() }).loose(),
);

/** The title requests the mock received whose messages mention `marker`. */
async function titleRequests(marker: string) {
  const all = Requests.parse(await (await fetch(`${testEnv.MOCK_LLM_URL}/__mock/requests`)).json());
  return all.filter((r) => {
    const text = JSON.stringify(r.body.messages);
    return text.includes(TITLE_INSTRUCTIONS) && text.includes(marker);
  });
}

/** Words as the mock counts tokens: whitespace-separated runs, its directives left out. */
const words = (s: string) => (s.replace(/\[\[mock[^\]]*\]\]/g, ' ').match(/\S+/g) ?? []).length;
const textOfContent = (c: unknown): string =>
  typeof c === 'string' ? c : z.array(z.object({ text: z.string() }).loose()).parse(c).map((p) => p.text).join('\n');

async function setTitles(value: { model_config_id: string | null; enabled: boolean }) {
  const db = testDb();
  try {
    await db.query(
      "INSERT INTO site_configs (key, value) VALUES ('title_model', $1) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
      [JSON.stringify(value)],
    );
  } finally {
    await db.close();
  }
  // The setting is read with the model's resolution, which this isolate caches for 30 s (functions/core/model-resolve.ts):
  // the API's writers drop that cache, so this direct write does too (a file before this one in its group resolved
  // models with titles off).
  invalidateModelCache();
}

beforeAll(async () => {
  await setTitles({ model_config_id: null, enabled: true });
});
afterAll(async () => {
  await setTitles({ model_config_id: null, enabled: false });
});

describe('titles written by a model', () => {
  it('sends the title as an event after the first answer, and GET and the list show it', async () => {
    const u = await makeUser();
    const gate = mockGate();
    const tag = crypto.randomUUID();
    const chat = await sdk(u.token).createChat({ content: `plan a trip to Paris ${tag} ${gate.directive()} [[mock title_reply="Paris trip plans"]]` });
    expect(chat.title.startsWith('plan a trip to Paris')).toBe(true);
    const s = streamOf(chat.id, u.token);
    const seen = watch(s);
    try {
      await s.until((x) => x.connected, within);
      await gate.waiting();
      await gate.open();
      await s.until(() => seen.events.some((e) => e.type === 'title'), within);
      expect(seen.events.filter((e) => e.type === 'title')).toEqual([{ type: 'title', chat_id: chat.id, title: 'Paris trip plans' }]);
      // The title comes after the turn's end was published.
      const end = seen.events.findIndex((e) => e.type === 'status' && e.status.status === 'waiting');
      expect(end).toBeGreaterThanOrEqual(0);
      expect(seen.events.findIndex((e) => e.type === 'title')).toBeGreaterThan(end);
    } finally {
      await s.close();
    }
    expect(await roomOf(chat.id).idle()).toBe('waiting');
    expect((await sdk(u.token).getChat(chat.id)).title).toBe('Paris trip plans');
    expect((await sdk(u.token).listChats()).map((c) => [c.id, c.title])).toEqual([[chat.id, 'Paris trip plans']]);
    expect(await titleRequests(tag)).toHaveLength(1);
    // Only the first answer asks: a second turn leaves the title and makes no title call.
    await sdk(u.token).sendMessage(chat.id, { content: `and Lyon ${tag} [[mock title_reply="Lyon"]]` });
    expect(await roomOf(chat.id).idle()).toBe('waiting');
    expect((await sdk(u.token).getChat(chat.id)).title).toBe('Paris trip plans');
    expect(await titleRequests(tag)).toHaveLength(1);
  });

  it('asks the title model of the setting, and counts its tokens and cost as usage of the chat (not as a turn)', async () => {
    const owner = await makeOwner();
    const titleCfg = await pricedModel(owner, { input_per_mtok: '1000000', output_per_mtok: '1000000' });
    expect(await sdk(owner.token).setTitleModel({ title_model_config_id: titleCfg })).toEqual({ title_model_config_id: titleCfg });
    expect(await sdk(owner.token).titleModel()).toEqual({ title_model_config_id: titleCfg });
    try {
      const u = await makeUser();
      const tag = crypto.randomUUID();
      const chat = await startChat(u.token, `budget for ${tag} [[mock title_reply="A trip budget"]]`);
      expect((await sdk(u.token).getChat(chat.id)).title).toBe('A trip budget');
      const [req] = await titleRequests(tag);
      if (!req) throw new Error('no title request');
      const input = req.body.messages.reduce((n, m) => n + words(textOfContent(m.content)), 0);
      const output = words('A trip budget');
      const db = testDb();
      try {
        const daily = await db.query(
          'SELECT turns, unpriced_turns, input_tokens::int AS input, output_tokens::int AS output, cost_micros::text AS cost FROM usage_daily WHERE user_id = $1 AND model_config_id = $2',
          [u.user.id, titleCfg],
        );
        expect(daily.rows).toEqual([{ turns: 0, unpriced_turns: 0, input, output, cost: String((input + output) * 1_000_000) }]);
        // The chat's row holds its answer (one turn, on the chat's own model) and the title call's tokens and cost.
        const byChat = await db.query('SELECT turns, cost_micros::text AS cost FROM usage_by_chat WHERE chat_id = $1', [chat.id]);
        expect(byChat.rows).toEqual([{ turns: 1, cost: String((input + output) * 1_000_000) }]);
      } finally {
        await db.close();
      }
    } finally {
      await sdk(owner.token).setTitleModel({ title_model_config_id: null });
    }
  });

  it('keeps a title the owner set, at creation or by PATCH, and makes no title call', async () => {
    const u = await makeUser();
    const tag = crypto.randomUUID();
    const given = await startChat(u.token, `first ${tag} [[mock title_reply="Model title"]]`, { title: 'My own title' });
    expect((await sdk(u.token).getChat(given.id)).title).toBe('My own title');
    const gate = mockGate();
    const patched = await sdk(u.token).createChat({ content: `second ${tag} ${gate.directive()} [[mock title_reply="Model title"]]` });
    await gate.waiting();
    await sdk(u.token).updateChat(patched.id, { title: 'Renamed while it ran' });
    await gate.open();
    expect(await roomOf(patched.id).idle()).toBe('waiting');
    expect((await sdk(u.token).getChat(patched.id)).title).toBe('Renamed while it ran');
    expect(await titleRequests(tag)).toEqual([]);
  });

  it('leaves the title when the title model fails, and does not ask again', async () => {
    const u = await makeUser();
    const tag = crypto.randomUUID();
    const chat = await startChat(u.token, `failing titles ${tag} [[mock title_error_status=400]]`);
    expect(await titleRequests(tag)).toHaveLength(1);
    expect((await sdk(u.token).getChat(chat.id)).title).toBe(chat.title);
    await sdk(u.token).sendMessage(chat.id, { content: `again ${tag}` });
    expect(await roomOf(chat.id).idle()).toBe('waiting');
    expect((await sdk(u.token).getChat(chat.id)).title).toBe(chat.title);
    expect(await titleRequests(tag)).toHaveLength(1);
  });

  it('lets only owners read or choose the title model, and refuses an unknown config with 400', async () => {
    const member = await makeUser();
    expect((await call('GET', '/api/v2/chats/config/title-model', { token: member.token })).status).toBe(403);
    expect((await call('PUT', '/api/v2/chats/config/title-model', { token: member.token, body: { title_model_config_id: null } })).status).toBe(403);
    const owner = await makeOwner();
    const r = await call('PUT', '/api/v2/chats/config/title-model', { token: owner.token, body: { title_model_config_id: crypto.randomUUID() } });
    expect(r.status).toBe(400);
    expect(ErrorBody.parse(r.body).validations).toEqual([{ field: 'title_model_config_id', detail: 'no live model config has this id' }]);
    const bad = await call('PUT', '/api/v2/chats/config/title-model', { token: owner.token, body: { title_model_config_id: 'nope' } });
    expect(bad.status).toBe(400);
    expect(await sdk(owner.token).titleModel()).toEqual({ title_model_config_id: null });
  });
});
