/**
 * Spend limits, end to end: a turn on a priced model is refused (402) before the model is called once the user's
 * spend in the period has reached their limit, nothing is stored, a queued message pauses the queue, a new period
 * starts from zero, and a user's own limit overrides the deployment default.
 */
import { abortAllDurableObjects } from 'cloudflare:test';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { Chat } from '../../functions/core/shapes/chat';
import { call, ErrorBody, makeOwner, makeUser, messagesOf, mockGate, roomOf, testDb, testEnv } from './helpers';
import {
  callsMentioning,
  chatOn,
  expectSpendLimit,
  limitOf,
  nextUtcMidnight,
  pricedModel,
  setUserLimit,
  shiftMeterClock,
  SpendStateSchema,
} from './usage-fixtures';

const DAY = 86_400_000;
/** One unit per token: "word <tag>" costs 2 in + 3 out ("Echo: word <tag>") = 5.000000. */
const UNIT_PER_TOKEN = { input_per_mtok: '1000000', output_per_mtok: '1000000' };
const tagOf = () => crypto.randomUUID().slice(0, 8);

afterEach(async () => {
  const db = testDb();
  await db.query("DELETE FROM site_configs WHERE key = 'spend_limit'", []);
  await db.close();
});

describe('spend limits', () => {
  it('refuse a turn before the model is called, store nothing, and start again from zero in a new period', async () => {
    const owner = await makeOwner();
    const u = await makeUser();
    const cfg = await pricedModel(owner, UNIT_PER_TOKEN);
    await setUserLimit(owner, u.user.id, { period: 'day', amount: '4' });
    const tag = tagOf();
    // Nothing spent yet: the first turn runs, and costs more than the whole limit (the overshoot of a running turn).
    const chat = await chatOn(u.token, cfg, `limit ${tag}`);
    const [first, answer] = await messagesOf(chat.id, u.token);
    expect(answer?.usage?.cost).toBe('5.000000');
    const resets = nextUtcMidnight(Date.now());
    expect(await limitOf(u.token)).toEqual({ period: 'day', amount: '4.000000', spent: '5.000000', resets_at: resets, override: true });

    // Every way to start a turn on the priced model is refused with the reset time.
    const post = await call('POST', `/api/v2/chats/${chat.id}/messages`, { token: u.token, body: { content: `again ${tag}` } });
    expect(expectSpendLimit(post)).toBe(resets);
    const interrupt = await call('POST', `/api/v2/chats/${chat.id}/messages`, { token: u.token, body: { content: `now ${tag}`, busy_behavior: 'interrupt' } });
    expectSpendLimit(interrupt);
    const edit = await call('PATCH', `/api/v2/chats/${chat.id}/messages/${String(first?.id)}`, { token: u.token, body: { content: `edited ${tag}` } });
    expectSpendLimit(edit);
    const created = await call('POST', '/api/v2/chats', { token: u.token, body: { content: `new ${tag}`, model_config_id: cfg } });
    expectSpendLimit(created);
    // The mock saw only the first turn; nothing was stored (no message, no edit, no chat).
    expect(await callsMentioning(tag)).toBe(1);
    expect((await messagesOf(chat.id, u.token)).map((m) => m.content)).toEqual([first?.content, answer?.content]);
    expect(z.array(Chat).parse((await call('GET', '/api/v2/chats', { token: u.token })).body)).toHaveLength(1);
    expect((await call('GET', `/api/v2/chats/${chat.id}`, { token: u.token })).body).toMatchObject({ status: 'waiting', last_error: null });

    // An unpriced model costs nothing and is never refused.
    const free = await call('POST', `/api/v2/chats/${chat.id}/messages`, { token: u.token, body: { content: `free ${tag}`, model_config_id: testEnv.MOCK_MODEL_CONFIG_ID } });
    expect(free.status, free.text).toBe(201);
    await roomOf(chat.id).idle();

    // The next day (the meter's clock moved), yesterday's spend no longer counts.
    await shiftMeterClock(u.user.id, DAY);
    const next = await call('POST', `/api/v2/chats/${chat.id}/messages`, { token: u.token, body: { content: `tomorrow ${tag}`, model_config_id: cfg } });
    expect(next.status, next.text).toBe(201);
    expect(await roomOf(chat.id).idle()).toBe('waiting');
    expect(await limitOf(u.token)).toMatchObject({ spent: '0.000000', resets_at: nextUtcMidnight(Date.now() + DAY) });
  });

  it('answer a replay of a message stored before the limit was reached with that message, not 402', async () => {
    const owner = await makeOwner();
    const u = await makeUser();
    const cfg = await pricedModel(owner, UNIT_PER_TOKEN);
    await setUserLimit(owner, u.user.id, { period: 'day', amount: '6' });
    const tag = tagOf();
    const chat = await chatOn(u.token, cfg, `first ${tag}`);
    const key = crypto.randomUUID();
    const send = () => call('POST', `/api/v2/chats/${chat.id}/messages`, { token: u.token, body: { content: `keyed ${tag}` }, headers: { 'idempotency-key': key } });
    const sent = await send();
    expect(sent.status, sent.text).toBe(201);
    expect(await roomOf(chat.id).idle()).toBe('waiting');
    expect((await limitOf(u.token)).spent).not.toBe('0.000000');
    expectSpendLimit(await call('POST', `/api/v2/chats/${chat.id}/messages`, { token: u.token, body: { content: `over ${tag}` } }));
    // The object forgets the replies it keeps in memory (as after an eviction): the replay is found by its key.
    await abortAllDurableObjects();
    const replay = await send();
    expect(replay.status, replay.text).toBe(201);
    expect(replay.body).toEqual(sent.body);
    expect(await callsMentioning(tag)).toBe(2);
  });

  it("pause the queue when its next message reaches the limit: status error, kind spend_limit, the message kept", async () => {
    const owner = await makeOwner();
    const u = await makeUser();
    const cfg = await pricedModel(owner, UNIT_PER_TOKEN);
    await setUserLimit(owner, u.user.id, { period: 'month', amount: '4' });
    const tag = tagOf();
    const gate = mockGate();
    const r = await call('POST', '/api/v2/chats', { token: u.token, body: { content: `held ${tag} ${gate.directive()}`, model_config_id: cfg } });
    expect(r.status, r.text).toBe(201);
    const chat = Chat.parse(r.body);
    await gate.waiting(1);
    const queued = await call('POST', `/api/v2/chats/${chat.id}/messages`, { token: u.token, body: { content: `queued ${tag}` } });
    expect(queued.status, queued.text).toBe(202);
    await gate.open();
    // The held turn costs 5: the queued message finds the limit reached.
    expect(await roomOf(chat.id).idle()).toBe('error');
    const after = Chat.parse((await call('GET', `/api/v2/chats/${chat.id}`, { token: u.token })).body);
    expect(after.status).toBe('error');
    expect(after.last_error?.kind).toBe('spend_limit');
    expect(after.last_error?.message).toContain('Spend limit reached for this period.');
    const queue = z.object({ queued_messages: z.array(z.object({ content: z.unknown() }).loose()) }).parse(
      (await call('GET', `/api/v2/chats/${chat.id}/queue`, { token: u.token })).body,
    );
    expect(queue.queued_messages.map((q) => q.content)).toEqual([[{ type: 'text', text: `queued ${tag}` }]]);
    expect(await callsMentioning(tag)).toBe(1);
    expect((await messagesOf(chat.id, u.token)).map((m) => m.role)).toEqual(['user', 'assistant']);
  });

  it('let concurrent turns overshoot by at most the turns already running, and refuse the next one', async () => {
    const owner = await makeOwner();
    const u = await makeUser();
    const cfg = await pricedModel(owner, UNIT_PER_TOKEN);
    // Less than one turn: once anything is spent, the limit is reached.
    await setUserLimit(owner, u.user.id, { period: 'day', amount: '1' });
    const tag = tagOf();
    const gate = mockGate();
    // Three turns in three chats start together, nothing spent yet: all three are allowed, and held at the gate.
    const started = await Promise.all(
      [1, 2, 3].map((n) => call('POST', '/api/v2/chats', { token: u.token, body: { content: `race${String(n)} ${tag} ${gate.directive()}`, model_config_id: cfg } })),
    );
    for (const r of started) expect(r.status, r.text).toBe(201);
    const chats = started.map((r) => Chat.parse(r.body));
    await gate.waiting(3);
    // A message queued behind a running turn is checked when its turn comes, not now.
    const fourth = await call('POST', `/api/v2/chats/${chats[0]?.id ?? ''}/messages`, { token: u.token, body: { content: `race4 ${tag}` } });
    expect(fourth.status, fourth.text).toBe(202);
    await gate.open();
    for (const c of chats) await roomOf(c.id).idle();
    // By then its chat's answer had reached the limit: it did not run.
    expect(Chat.parse((await call('GET', `/api/v2/chats/${chats[0]?.id ?? ''}`, { token: u.token })).body).last_error?.kind).toBe('spend_limit');
    // The overshoot is exactly the three running turns (5 each); every answer is counted, none twice.
    const costs = (await Promise.all(chats.map((c) => messagesOf(c.id, u.token)))).flat().filter((m) => m.role === 'assistant').map((m) => m.usage?.cost);
    expect(costs).toEqual(['5.000000', '5.000000', '5.000000']);
    expect(await limitOf(u.token)).toMatchObject({ amount: '1.000000', spent: '15.000000' });
    // Any chat of the user, on any object, is refused now; the model saw the three turns only.
    for (const c of chats) expectSpendLimit(await call('POST', `/api/v2/chats/${c.id}/messages`, { token: u.token, body: { content: `after ${tag}` } }));
    expectSpendLimit(await call('POST', '/api/v2/chats', { token: u.token, body: { content: `after ${tag}`, model_config_id: cfg } }));
    expect(await callsMentioning(tag)).toBe(3);
  });

  it('a month limit rolls over on the first of the next month', async () => {
    const owner = await makeOwner();
    const u = await makeUser();
    const cfg = await pricedModel(owner, UNIT_PER_TOKEN);
    await setUserLimit(owner, u.user.id, { period: 'month', amount: '5' });
    const tag = tagOf();
    const chat = await chatOn(u.token, cfg, `month ${tag}`);
    const now = new Date();
    const firstOfNext = Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + 1, 1);
    expect(expectSpendLimit(await call('POST', `/api/v2/chats/${chat.id}/messages`, { token: u.token, body: { content: `again ${tag}` } }))).toBe(
      new Date(firstOfNext).toISOString(),
    );
    // An hour into the next month, this month's spend no longer counts.
    await shiftMeterClock(u.user.id, firstOfNext + 3_600_000 - Date.now());
    const next = await call('POST', `/api/v2/chats/${chat.id}/messages`, { token: u.token, body: { content: `next ${tag}` } });
    expect(next.status, next.text).toBe(201);
    expect(await roomOf(chat.id).idle()).toBe('waiting');
    expect(await callsMentioning(tag)).toBe(2);
  });

  it("a user's own limit overrides the deployment default; clearing it restores the default", async () => {
    const owner = await makeOwner();
    const [a, b] = [await makeUser(), await makeUser()];
    const cfg = await pricedModel(owner, UNIT_PER_TOKEN);
    const put = await call('PUT', '/api/v2/chats/config/spend-limit', { token: owner.token, body: { period: 'month', amount: '0' } });
    expect(put.body).toEqual({ period: 'month', amount: '0.000000' });
    expect((await call('GET', '/api/v2/chats/config/spend-limit', { token: owner.token })).body).toEqual({ period: 'month', amount: '0.000000' });
    const tag = tagOf();

    // A limit of 0 refuses every priced turn of users without their own limit; nothing is stored.
    const refused = await call('POST', '/api/v2/chats', { token: a.token, body: { content: `a ${tag}`, model_config_id: cfg } });
    const now = new Date();
    expect(expectSpendLimit(refused)).toBe(new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + 1, 1)).toISOString());
    expect((await call('GET', '/api/v2/chats', { token: a.token })).body).toEqual([]);
    expect(await limitOf(a.token)).toMatchObject({ period: 'month', amount: '0.000000', spent: '0.000000', override: false });

    const own = SpendStateSchema.parse(await setUserLimit(owner, b.user.id, { period: 'day', amount: '100' }));
    expect(own).toMatchObject({ period: 'day', amount: '100.000000', override: true });
    await chatOn(b.token, cfg, `b ${tag}`);
    expect(await limitOf(b.token)).toMatchObject({ period: 'day', amount: '100.000000', spent: '5.000000', override: true });
    const seen = await call('GET', `/api/v2/users/${b.user.id}/spend-limit`, { token: owner.token });
    expect(SpendStateSchema.parse(seen.body)).toMatchObject({ spent: '5.000000', override: true });

    const cleared = SpendStateSchema.parse(await setUserLimit(owner, b.user.id, { period: 'day', amount: null }));
    expect(cleared).toMatchObject({ period: 'month', amount: '0.000000', spent: '5.000000', override: false });
    expectSpendLimit(await call('POST', '/api/v2/chats', { token: b.token, body: { content: `b2 ${tag}`, model_config_id: cfg } }));
    expect(await callsMentioning(tag)).toBe(1);
  });

  it('are set by owners only, with valid amounts, for existing users', async () => {
    const owner = await makeOwner();
    const member = await makeUser();
    const path = `/api/v2/users/${member.user.id}/spend-limit`;
    for (const body of [{ period: 'week', amount: '1' }, { period: 'day', amount: '-1' }, { period: 'day', amount: 1 }, { period: 'day', amount: '1.0000001' }, { period: 'day' }, { amount: '1' }]) {
      const r = await call('PUT', path, { token: owner.token, body });
      expect(r.status, JSON.stringify(body)).toBe(400);
      ErrorBody.parse(r.body);
      expect((await call('PUT', '/api/v2/chats/config/spend-limit', { token: owner.token, body })).status).toBe(400);
    }
    expect((await call('PUT', `/api/v2/users/${crypto.randomUUID()}/spend-limit`, { token: owner.token, body: { period: 'day', amount: '1' } })).status).toBe(404);
    expect((await call('PUT', `/api/v2/users/${crypto.randomUUID()}/spend-limit`, { token: owner.token, body: { period: 'day', amount: null } })).status).toBe(404);
    expect((await call('GET', `/api/v2/users/${crypto.randomUUID()}/spend-limit`, { token: owner.token })).status).toBe(404);
    expect((await call('PUT', path, { token: member.token, body: { period: 'day', amount: '1' } })).status).toBe(403);
    expect((await call('GET', path, { token: member.token })).status).toBe(403);
    expect((await call('GET', '/api/v2/chats/config/spend-limit', { token: member.token })).status).toBe(403);
    expect((await call('PUT', '/api/v2/chats/config/spend-limit', { token: member.token, body: { period: 'day', amount: null } })).status).toBe(403);
    expect((await call('GET', '/api/v2/users/me/usage/limit')).status).toBe(401);
    // Without any limit: no amount, nothing spent, this month.
    expect(await limitOf(member.token)).toMatchObject({ period: 'month', amount: null, spent: '0.000000', override: false });
  });
});
