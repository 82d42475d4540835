import { abortAllDurableObjects } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { insertChatMessages } from '../../sql/generated/chat_messages.queries';
import { insertChat } from '../../sql/generated/chats.queries';
import { paired, type NewMessage } from '../../durable-objects/room/written';
import { toMessage, type Part } from '../../functions/core/chats';
import { call, ErrorBody, freshWorld, makeUser, messagesOf, mockGate, roomOf, sdk, startChat, streamOf, testDb, testEnv, textOf, watch, within } from './helpers';

const slow = (n = 40, delay = 25) => `[[mock chunks=${n} chunk_delay_ms=${delay}]]`;

describe('POST /chats', () => {
  it('creates the chat with the default model, the user message, runs a turn and stores usage', async () => {
    const u = await makeUser();
    const chat = await sdk(u.token).createChat({ content: 'Plan the trip\nwith details', labels: { team: 'infra' } });
    expect(chat).toMatchObject({
      owner_id: u.user.id,
      title: 'Plan the trip',
      last_model_config_id: testEnv.MOCK_MODEL_CONFIG_ID,
      archived: false,
      labels: { team: 'infra' },
      agent_id: null,
    });
    expect(['running', 'waiting']).toContain(chat.status);
    expect(await roomOf(chat.id).idle()).toBe('waiting');
    const msgs = await messagesOf(chat.id, u.token);
    expect(msgs.map((m) => m.role)).toEqual(['user', 'assistant']);
    expect(textOf(msgs[1] ?? { content: [] })).toBe('Echo: Plan the trip\nwith details');
    expect(msgs[1]?.usage).toMatchObject({ input_tokens: 5, output_tokens: 6, total_tokens: 11 });
    expect(msgs[0]?.usage).toBeUndefined();
    expect(msgs.every((m) => m.model_config_id === testEnv.MOCK_MODEL_CONFIG_ID)).toBe(true);
    expect((await sdk(u.token).getChat(chat.id)).status).toBe('waiting');
  });

  it.each([
    [{ content: '' }, 'content'],
    [{ content: '   ' }, 'content'],
    [{ content: [] }, 'content'],
    [{ content: [{ type: 'image', url: 'x' }] }, 'content.0.type'],
    [{}, 'content'],
    [{ content: 'x', model_config_id: 'nope' }, 'model_config_id'],
    [{ content: 'x', labels: { a: 1 } }, 'labels.a'],
    [{ content: 'x', extra: true }, '(body)'],
  ])('rejects %j with 400 and creates nothing', async (body, field) => {
    const u = await makeUser();
    const r = await call('POST', '/api/v2/chats', { token: u.token, body });
    expect(r.status).toBe(400);
    expect(ErrorBody.parse(r.body).validations?.map((v) => v.field)).toContain(field);
    const list = await call('GET', '/api/v2/chats', { token: u.token });
    expect(list.body).toEqual([]);
  });

  it('rejects an unknown, disabled or deleted model config with 400', async () => {
    const u = await makeUser();
    const db = testDb();
    const made = await db.query(
      "INSERT INTO chat_model_configs (provider, model, context_limit, enabled) VALUES ('openai-compat', 'off', 10, false) RETURNING id",
      [],
    );
    const off = z.object({ id: z.string() }).parse(made.rows[0]).id;
    const del = await db.query(
      "INSERT INTO chat_model_configs (provider, model, context_limit, deleted, deleted_at) VALUES ('openai-compat', 'gone', 10, true, now()) RETURNING id",
      [],
    );
    const gone = z.object({ id: z.string() }).parse(del.rows[0]).id;
    await db.close();
    for (const id of [crypto.randomUUID(), off, gone]) {
      const r = await call('POST', '/api/v2/chats', { token: u.token, body: { content: 'x', model_config_id: id } });
      expect(r.status).toBe(400);
      expect(ErrorBody.parse(r.body).message).toMatch(/model config is not available/);
    }
    expect((await call('GET', '/api/v2/chats', { token: u.token })).body).toEqual([]);
  });
});

describe('InsertChatMessages, the hot path', () => {
  async function bareChat(ownerId: string, modelConfigId: string | null, db = testDb()) {
    const id = crypto.randomUUID();
    await insertChat.run(
      { id, owner_id: ownerId, title: 't', status: 'waiting', last_model_config_id: modelConfigId, labels: '{}', agent_id: null },
      db,
    );
    return { db, id };
  }
  const xmin = async (db: ReturnType<typeof testDb>, id: string) =>
    z.object({ xmin: z.string() }).parse((await db.query('SELECT xmin::text FROM chats WHERE id = $1', [id])).rows[0]).xmin;
  const insert = (
    db: ReturnType<typeof testDb>,
    chatId: string,
    cfg: string | null,
    n = 1,
    opts: { status?: 'waiting' | 'running' | 'error'; lastError?: object; keys?: string[] } = {},
  ) =>
    insertChatMessages.run(
      {
        chat_id: chatId,
        model_config_id: cfg,
        roles: Array.from({ length: n }, (_, i) => (i % 2 ? 'assistant' : 'user')),
        contents: Array.from({ length: n }, (_, i) => JSON.stringify([{ type: 'text', text: `m${i}` }])),
        created_bys: Array.from({ length: n }, () => ''),
        usages: Array.from({ length: n }, (_, i) => JSON.stringify(i === 1 ? { input_tokens: 7, output_tokens: 3, total_tokens: 10 } : null)),
        keys: opts.keys ?? Array.from({ length: n }, () => ''),
        status: opts.status ?? null,
        last_error: opts.lastError ? JSON.stringify(opts.lastError) : null,
      },
      db,
    );
  const chatState = async (db: ReturnType<typeof testDb>, id: string) =>
    z
      .object({ status: z.string(), last_error: z.unknown(), xmin: z.string() })
      .parse((await db.query('SELECT status, last_error, xmin::text FROM chats WHERE id = $1', [id])).rows[0]);

  it('folds the status change into the insert, and leaves the chats row alone when the status does not change', async () => {
    const u = await makeUser();
    const { db, id } = await bareChat(u.user.id, testEnv.MOCK_MODEL_CONFIG_ID);
    const waiting = await chatState(db, id);
    const [user] = await insert(db, id, testEnv.MOCK_MODEL_CONFIG_ID, 1, { status: 'running' });
    const running = await chatState(db, id);
    expect(running.status).toBe('running');
    expect(running.xmin).not.toBe(waiting.xmin);
    expect(user?.chat_updated_at).toBeInstanceOf(Date);
    // Same model, same status: one more message, the chats row untouched.
    const [again] = await insert(db, id, testEnv.MOCK_MODEL_CONFIG_ID, 1, { status: 'running' });
    expect((await chatState(db, id)).xmin).toBe(running.xmin);
    expect(again?.chat_updated_at).toBeNull();
    const failed = { kind: 'provider_error', message: 'x' };
    await insert(db, id, testEnv.MOCK_MODEL_CONFIG_ID, 1, { status: 'error', lastError: failed });
    expect(await chatState(db, id)).toMatchObject({ status: 'error', last_error: failed });
    await insert(db, id, testEnv.MOCK_MODEL_CONFIG_ID, 1, { status: 'waiting' });
    expect(await chatState(db, id)).toMatchObject({ status: 'waiting', last_error: null });
    await db.close();
  });

  it('pairs the rows with the content written: keyed ones by key (a key already stored left out), unkeyed ones in input order', async () => {
    const u = await makeUser();
    const { db, id } = await bareChat(u.user.id, testEnv.MOCK_MODEL_CONFIG_ID);
    await insert(db, id, testEnv.MOCK_MODEL_CONFIG_ID, 1, { keys: ['turn:x'] });
    const text = (t: string): Part[] => [{ type: 'text', text: t }];
    const sent: NewMessage[] = [
      { role: 'user', content: text('u0'), createdBy: null, key: null },
      { role: 'assistant', content: text('already stored'), createdBy: null, key: 'turn:x' },
      { role: 'user', content: text('u1'), createdBy: null, key: null },
      { role: 'assistant', content: text('a'), createdBy: null, key: 'turn:y' },
      { role: 'user', content: text('u2'), createdBy: null, key: null },
    ];
    const rows = await insertChatMessages.run(
      {
        chat_id: id,
        model_config_id: testEnv.MOCK_MODEL_CONFIG_ID,
        roles: sent.map((m) => m.role),
        contents: sent.map((m) => JSON.stringify(m.content)),
        created_bys: sent.map(() => ''),
        usages: sent.map(() => 'null'),
        keys: sent.map((m) => m.key ?? ''),
        status: null,
        last_error: null,
      },
      db,
    );
    const messages = paired(rows, sent);
    expect(messages.map((m) => [m.role, textOf(m)])).toEqual([
      ['user', 'u0'],
      ['user', 'u1'],
      ['assistant', 'a'],
      ['user', 'u2'],
    ]);
    // Each as a read gives it back.
    const stored = await db.query('SELECT * FROM chat_messages WHERE chat_id = $1 AND id = ANY($2::bigint[]) ORDER BY id', [id, messages.map((m) => m.id)]);
    expect(stored.rows.map(toMessage)).toEqual(messages);
    await db.close();
  });

  it('an idempotency key is inserted once: a replayed batch adds nothing, a queued key blocks it too', async () => {
    const u = await makeUser();
    const { db, id } = await bareChat(u.user.id, testEnv.MOCK_MODEL_CONFIG_ID);
    const first = await insert(db, id, testEnv.MOCK_MODEL_CONFIG_ID, 2, { keys: ['req:a', 'turn:b'], status: 'waiting' });
    expect(first).toHaveLength(2);
    expect(await insert(db, id, testEnv.MOCK_MODEL_CONFIG_ID, 2, { keys: ['req:a', 'turn:b'], status: 'waiting' })).toHaveLength(0);
    expect(await insert(db, id, testEnv.MOCK_MODEL_CONFIG_ID, 2, { keys: ['req:a', 'turn:c'] })).toHaveLength(1);
    await db.query(
      "INSERT INTO chat_queued_messages (chat_id, content, position, idempotency_key) VALUES ($1, '[]', 1, 'req:q')",
      [id],
    );
    expect(await insert(db, id, testEnv.MOCK_MODEL_CONFIG_ID, 1, { keys: ['req:q'] })).toHaveLength(0);
    const n = await db.query('SELECT count(*)::int AS n FROM chat_messages WHERE chat_id = $1', [id]);
    expect(n.rows[0]).toEqual({ n: 3 });
    await db.close();
  });

  it('a same-model insert leaves the chats row untouched (same xmin, no update counted)', async () => {
    // A database of its own: the table counters are per database, and other suites write chats meanwhile.
    const w = await freshWorld();
    await w.db.query("INSERT INTO chat_providers (provider, base_url) VALUES ('openai-compat', 'http://127.0.0.1:9/v1')", []);
    const made = await w.db.query("INSERT INTO chat_model_configs (provider, model, context_limit) VALUES ('openai-compat', 'm', 10) RETURNING id", []);
    const cfg = z.object({ id: z.string() }).parse(made.rows[0]).id;
    const u = await makeUser({ env: w.env, db: w.db });
    const { db, id } = await bareChat(u.user.id, cfg, w.db);
    const before = await xmin(db, id);
    const upd = async () =>
      z.object({ n: z.coerce.number() }).parse((await db.query("SELECT n_tup_upd AS n FROM pg_stat_user_tables WHERE relname = 'chats'", [])).rows[0]).n;
    await db.query('SELECT pg_stat_clear_snapshot()', []);
    const updBefore = await upd();
    await insert(db, id, cfg, 3);
    await insert(db, id, null, 1);
    expect(await xmin(db, id)).toBe(before);
    // Statistics are flushed asynchronously; force them before reading.
    await db.query('SELECT pg_stat_force_next_flush()', []);
    await db.query('SELECT pg_stat_clear_snapshot()', []);
    expect(await upd()).toBe(updBefore);
    await db.close();
  });

  it('a real model switch updates last_model_config_id', async () => {
    const u = await makeUser();
    const db0 = testDb();
    const made = await db0.query("INSERT INTO chat_model_configs (provider, model, context_limit) VALUES ('openai-compat', 'other', 10) RETURNING id", []);
    await db0.close();
    const other = z.object({ id: z.string() }).parse(made.rows[0]).id;
    const { db, id } = await bareChat(u.user.id, testEnv.MOCK_MODEL_CONFIG_ID);
    const before = await xmin(db, id);
    await insert(db, id, other);
    expect(await xmin(db, id)).not.toBe(before);
    const row = await db.query('SELECT last_model_config_id FROM chats WHERE id = $1', [id]);
    expect(row.rows[0]).toEqual({ last_model_config_id: other });
    await db.close();
  });

  it('inserts a batch in one statement, ids ascending in input order, results in input order', async () => {
    const u = await makeUser();
    const { db, id } = await bareChat(u.user.id, null);
    const rows = await insert(db, id, testEnv.MOCK_MODEL_CONFIG_ID, 6);
    const stored = await db.query('SELECT id::int, content->0->>\'text\' AS t, input_tokens::int FROM chat_messages WHERE chat_id = $1 ORDER BY id', [id]);
    expect(stored.rows.map((r) => z.object({ t: z.string() }).parse(r).t)).toEqual(['m0', 'm1', 'm2', 'm3', 'm4', 'm5']);
    // The rows come back in id order, without their content (the writer pairs them with what it sent: paired()).
    const ids = stored.rows.map((r) => z.object({ id: z.number() }).parse(r).id);
    expect(rows.map((r) => Number(z.object({ id: z.union([z.string(), z.number()]) }).parse(r).id))).toEqual(ids);
    expect(rows.every((r) => !Object.hasOwn(z.record(z.string(), z.unknown()).parse(r), 'content'))).toBe(true);
    expect(z.object({ input_tokens: z.number().nullable() }).parse(stored.rows[1]).input_tokens).toBe(7);
    // The first insert into a chat with no model set it once.
    expect((await db.query('SELECT last_model_config_id FROM chats WHERE id = $1', [id])).rows[0]).toEqual({
      last_model_config_id: testEnv.MOCK_MODEL_CONFIG_ID,
    });
    await db.close();
  });
});

describe('messages paging', () => {
  it('pages with after_id, before_id and limit, ascending, hiding soft-deleted messages', async () => {
    const u = await makeUser();
    const chat = await startChat(u.token, 'first');
    for (const t of ['second', 'third', 'fourth']) {
      expect(await sdk(u.token).sendMessage(chat.id, { content: t })).toHaveProperty('message');
      await roomOf(chat.id).idle();
    }
    const all = await messagesOf(chat.id, u.token);
    expect(all).toHaveLength(8);
    const ids = all.map((m) => m.id);
    expect([...ids].sort((a, b) => a - b)).toEqual(ids);
    type Query = Parameters<ReturnType<typeof sdk>['listMessages']>[1];
    const page = async (q: Query) => (await sdk(u.token).listMessages(chat.id, q)).messages.map((m) => m.id);
    const id = (i: number) => ids[i] ?? -1;
    const cases: [Query, number[]][] = [
      [{ limit: 3 }, ids.slice(0, 3)],
      [{ after_id: id(2), limit: 3 }, ids.slice(3, 6)],
      [{ after_id: id(7) }, []],
      [{ before_id: id(5), limit: 2 }, ids.slice(3, 5)],
      [{ before_id: id(0) }, []],
      [{ before_id: id(7), limit: 50 }, ids.slice(0, 7)],
      [{ after_id: id(1), before_id: id(4) }, ids.slice(2, 4)],
      [{ after_id: 0, limit: 200 }, ids],
    ];
    // A warm object answers every page from its cache; a cold one (after an eviction) from Postgres, the same.
    const before = await roomOf(chat.id).stats();
    for (const [q, want] of cases) expect(await page(q), JSON.stringify(q)).toEqual(want);
    expect(await roomOf(chat.id).stats()).toMatchObject({ cachePages: before.cachePages + cases.length, dbPages: before.dbPages });
    for (const [q, want] of cases) {
      await abortAllDurableObjects();
      expect(await page(q), `cold ${JSON.stringify(q)}`).toEqual(want);
    }
    const db = testDb();
    // Written behind the object's back (it is the only writer of its chat), so read by a cold object.
    await db.query('UPDATE chat_messages SET deleted = true WHERE id = $1', [id(3)]);
    await db.close();
    await abortAllDurableObjects();
    expect(await page({})).toEqual(ids.filter((_, i) => i !== 3));
    for (const bad of ['?limit=0', '?limit=201', '?after_id=-1', '?after_id=abc', '?before_id=1.5']) {
      const r = await call('GET', `/api/v2/chats/${chat.id}/messages${bad}`, { token: u.token });
      expect(r.status, bad).toBe(400);
    }
  });
});

describe('edits', () => {
  it('replaces a user message, soft-deletes later ones, sends full_refresh, and runs a new turn', async () => {
    const u = await makeUser();
    const chat = await startChat(u.token, 'original');
    await sdk(u.token).sendMessage(chat.id, { content: 'follow-up' });
    await roomOf(chat.id).idle();
    const before = await messagesOf(chat.id, u.token);
    expect(before.map((m) => m.role)).toEqual(['user', 'assistant', 'user', 'assistant']);
    const first = before[0];
    if (!first) throw new Error('no first message');
    const stream = streamOf(chat.id, u.token, { afterId: before.at(-1)?.id ?? 0 });
    const seen = watch(stream);
    await stream.until((x) => x.connected, within);

    const { message } = await sdk(u.token).editMessage(chat.id, first.id, { content: 'edited' });
    expect(textOf(message)).toBe('edited');
    await stream.until((x) => x.resumeCounts.fullRefreshes === 1, within);
    const refresh = seen.events.find((e) => e.type === 'full_refresh');
    expect(refresh?.type === 'full_refresh' && refresh.messages.map((m) => m.id)).toEqual([first.id]);
    await roomOf(chat.id).idle();
    const after = await messagesOf(chat.id, u.token);
    expect(after.map((m) => textOf(m))).toEqual(['edited', 'Echo: edited']);
    const db = testDb();
    const gone = await db.query('SELECT count(*)::int AS n FROM chat_messages WHERE chat_id = $1 AND deleted', [chat.id]);
    await db.close();
    expect(gone.rows[0]).toEqual({ n: 3 });
    await stream.until((x) => x.messages.some((m) => textOf(m) === 'Echo: edited'), within);
    expect(stream.messages).toEqual(after);
    await stream.close();
  });

  it('refuses to edit assistant messages (400) and unknown ones (404)', async () => {
    const u = await makeUser();
    const chat = await startChat(u.token);
    const [, asst] = await messagesOf(chat.id, u.token);
    await expect(sdk(u.token).editMessage(chat.id, asst?.id ?? 0, { content: 'x' })).rejects.toMatchObject({
      status: 400,
      message: 'Only user messages can be edited.',
    });
    await expect(sdk(u.token).editMessage(chat.id, 999999999, { content: 'x' })).rejects.toMatchObject({ status: 404 });
    const bad = await call('PATCH', `/api/v2/chats/${chat.id}/messages/abc`, { token: u.token, body: { content: 'x' } });
    expect(bad.status).toBe(400);
  });
});

describe('queue and interrupts', () => {
  it('queues up to 20 behind a running turn, then 409; runs them in order after delete and promote', async () => {
    const u = await makeUser();
    const gate = mockGate();
    const c = sdk(u.token);
    const chat = await c.createChat({ content: `busy ${gate.directive(3)}` });
    await gate.waiting(1);
    const queued: string[] = [];
    for (let i = 0; i < 20; i++) {
      const r = await c.sendMessage(chat.id, { content: `q${i}` });
      if (!('queued_message' in r)) throw new Error(`q${i} was not queued`);
      queued.push(r.queued_message.id);
    }
    await expect(c.sendMessage(chat.id, { content: 'one too many' })).rejects.toMatchObject({ status: 409, message: expect.stringMatching(/queue is full/) as string });

    const list = await c.queue(chat.id);
    expect(list.queued_messages.map((q) => textOf(q))).toEqual(queued.map((_, i) => `q${i}`));

    await c.deleteQueued(chat.id, queued[3] ?? '');
    await expect(c.deleteQueued(chat.id, queued[3] ?? '')).rejects.toMatchObject({ status: 404 });
    expect(await c.promoteQueued(chat.id, queued[19] ?? '')).toHaveProperty('queued_message');
    await gate.open();

    // Drain: every queued message runs, one turn each, in queue order.
    for (let i = 0; i < 40; i++) {
      const q = await c.queue(chat.id);
      await roomOf(chat.id).idle();
      if (q.queued_messages.length === 0) break;
    }
    expect(await roomOf(chat.id).idle()).toBe('waiting');
    const users = (await messagesOf(chat.id, u.token)).filter((m) => m.role === 'user').map((m) => textOf(m));
    const expected = ['q19', ...Array.from({ length: 19 }, (_, i) => `q${i}`).filter((t) => t !== 'q3')];
    expect(users.slice(1)).toEqual(expected);
    const assistants = (await messagesOf(chat.id, u.token)).filter((m) => m.role === 'assistant');
    expect(assistants).toHaveLength(20);
  });

  it('a failed turn pauses the queue; promote then sends the queued message at once', async () => {
    const u = await makeUser();
    const gate = mockGate();
    const failing = `fails [[mock error_status=500]] ${gate.directive()}`;
    const c = sdk(u.token);
    const chat = await c.createChat({ content: failing });
    await gate.waiting(1);
    const q = await c.sendMessage(chat.id, { content: 'later' });
    if (!('queued_message' in q)) throw new Error('not queued');
    await gate.open();
    const qid = q.queued_message.id;
    expect(await roomOf(chat.id).idle()).toBe('error');
    const failed = await c.getChat(chat.id);
    expect(failed.last_error).toEqual({ kind: 'provider_error', message: 'The model provider failed (HTTP 500).' });
    // Paused, not lost.
    expect((await c.queue(chat.id)).queued_messages.map((m) => m.id)).toEqual([qid]);

    await expect(c.promoteQueued(chat.id, crypto.randomUUID())).rejects.toMatchObject({ status: 404 });
    const p = await c.promoteQueued(chat.id, qid);
    if (!('message' in p)) throw new Error('the promoted message was queued, not sent');
    expect(textOf(p.message)).toBe('later');
    expect(await roomOf(chat.id).idle()).toBe('waiting');
    expect((await c.getChat(chat.id)).last_error).toBeNull();
    const texts = (await messagesOf(chat.id, u.token)).map((m) => textOf(m));
    expect(texts).toEqual([failing, 'later', 'Echo: later']);
  });

  it('interrupt keeps the partial text as an assistant message and returns to waiting', async () => {
    const u = await makeUser();
    const gate = mockGate();
    const c = sdk(u.token);
    const chat = await c.createChat({ content: `long ${slow(200, 0)} ${gate.directive(5)}` });
    const stream = streamOf(chat.id, u.token);
    const seen = watch(stream);
    await gate.waiting(1);
    await stream.until((x) => x.partial?.parts.length === 5, within);
    expect(await c.interrupt(chat.id)).toEqual({ status: 'interrupting' });
    expect(await roomOf(chat.id).idle()).toBe('waiting');
    const msgs = await messagesOf(chat.id, u.token);
    expect(msgs.map((m) => m.role)).toEqual(['user', 'assistant']);
    // Exactly the 5 deltas the model sent before it was stopped at the gate.
    expect(textOf(msgs[1] ?? { content: [] })).toBe('Echo: long Echo: long Echo:');
    await stream.until(() => seen.statuses.includes('interrupting') && seen.statuses.at(-1) === 'waiting', within);
    expect(stream.partial).toBeNull();
    await stream.close();
    // Interrupting an idle chat is harmless.
    expect(await c.interrupt(chat.id)).toEqual({ status: 'waiting' });
  });

  it('busy_behavior "interrupt" stops the running turn and runs the new message now', async () => {
    const u = await makeUser();
    const gate = mockGate();
    const c = sdk(u.token);
    const chat = await c.createChat({ content: `long ${slow(200, 2)} ${gate.directive(10)}` });
    await gate.waiting(1);
    expect(await c.sendMessage(chat.id, { content: 'change of plan', busy_behavior: 'interrupt' })).toHaveProperty('message');
    expect(await roomOf(chat.id).idle()).toBe('waiting');
    const msgs = await messagesOf(chat.id, u.token);
    expect(msgs.map((m) => m.role)).toEqual(['user', 'assistant', 'user', 'assistant']);
    expect(textOf(msgs[3] ?? { content: [] })).toBe('Echo: change of plan');
  });
});

describe('chat management', () => {
  it('lists own chats by activity, archives, renames and relabels', async () => {
    const u = await makeUser();
    const a = await startChat(u.token, 'alpha');
    const b = await startChat(u.token, 'beta');
    const c = sdk(u.token);
    expect((await c.listChats()).map((x) => x.id)).toEqual([b.id, a.id]);
    expect(await c.updateChat(a.id, { title: 'Renamed', archived: true, labels: { k: 'v' } })).toMatchObject({
      title: 'Renamed',
      archived: true,
      labels: { k: 'v' },
    });
    expect((await c.listChats()).map((x) => x.id)).toEqual([b.id]);
    expect((await c.listChats({ archived: 'true' })).map((x) => x.id)).toEqual([a.id]);
    expect(await c.listChats({ limit: 1, offset: 0 })).toHaveLength(1);
    for (const q of ['?limit=0', '?limit=999', '?offset=-1', '?archived=maybe']) {
      expect((await call('GET', `/api/v2/chats${q}`, { token: u.token })).status, q).toBe(400);
    }
    expect((await call('PATCH', `/api/v2/chats/${a.id}`, { token: u.token, body: { status: 'running' } })).status).toBe(400);
  });

  it('deleting a chat cascades to its messages and queue, and closes its stream', async () => {
    const u = await makeUser();
    const gate = mockGate();
    const c = sdk(u.token);
    const chat = await c.createChat({ content: `busy ${gate.directive(2)}` });
    await gate.waiting(1);
    expect(await c.sendMessage(chat.id, { content: 'queued' })).toHaveProperty('queued_message');
    const stream = streamOf(chat.id, u.token);
    await stream.until((x) => x.connected, within);
    await c.deleteChat(chat.id);
    const db = testDb();
    for (const t of ['chat_messages', 'chat_queued_messages']) {
      const n = await db.query(`SELECT count(*)::int AS n FROM ${t} WHERE chat_id = $1`, [chat.id]);
      expect(n.rows[0], t).toEqual({ n: 0 });
    }
    await db.close();
    await expect(c.getChat(chat.id)).rejects.toMatchObject({ status: 404 });
    await stream.closed;
    expect(stream.error).toMatchObject({ status: 404, closeCode: 4404 });
    await expect(c.deleteChat(chat.id)).rejects.toMatchObject({ status: 404 });
  });
});

describe('cross-user access', () => {
  it("another user's chat is a 404 on every chat route, and nothing changes", async () => {
    const owner = await makeUser();
    const other = await makeUser();
    const chat = await startChat(owner.token);
    const [msg] = await messagesOf(chat.id, owner.token);
    const qid = crypto.randomUUID();
    const t = sdk(other.token);
    const calls: (() => Promise<unknown>)[] = [
      () => t.getChat(chat.id),
      () => t.updateChat(chat.id, { title: 'mine now' }),
      () => t.deleteChat(chat.id),
      () => t.listMessages(chat.id),
      () => t.sendMessage(chat.id, { content: 'hi' }),
      () => t.editMessage(chat.id, msg?.id ?? 1, { content: 'x' }),
      () => t.interrupt(chat.id),
      () => t.queue(chat.id),
      () => t.deleteQueued(chat.id, qid),
      () => t.promoteQueued(chat.id, qid),
      () => t.streamTicket(chat.id),
      () => t.context(chat.id),
    ];
    for (const f of calls) {
      await expect(f()).rejects.toMatchObject({ status: 404, message: 'Resource not found or you do not have access to this resource' });
    }
    const s = t.stream(chat.id);
    await s.closed;
    expect(s.error?.status).toBe(404);
    expect(await t.listChats()).toEqual([]);
    expect((await sdk(owner.token).getChat(chat.id)).title).toBe(chat.title);
    expect(await messagesOf(chat.id, owner.token)).toHaveLength(2);
  });
});
