/**
 * One writer, one model call: whatever races reach a chat, its object decides under one lock whether a turn runs,
 * so the model is never called twice at once for a chat, and the history stays consistent. Also: requests replayed
 * with an Idempotency-Key, and the reset after an error that came after a commit.
 */
import { abortAllDurableObjects, runInDurableObject } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import type { ChatRoom } from '../../durable-objects/chat-room';
import { Chat, Message } from '../../functions/core/shapes/chat';
import { call, ErrorBody, makeUser, messagesOf, mockGate, roomOf, sdk, startChat, streamOf, testDb, testEnv, textOf, within } from './helpers';

const Recorded = z.array(
  z.object({ started_at: z.number(), ended_at: z.number().optional(), body: z.looseObject({ messages: z.array(z.unknown()) }).nullable() }).loose(),
);
async function callsWith(marker: string) {
  const all = Recorded.parse(await (await fetch(`${testEnv.MOCK_LLM_URL}/__mock/requests`)).json());
  return all.filter((r) => JSON.stringify(r.body?.messages ?? []).includes(marker));
}

describe('one writer, one model call', () => {
  it('ten concurrent edits and posts: the model sees at most one call at a time, and the history stays consistent', async () => {
    const u = await makeUser();
    const tag = crypto.randomUUID().slice(0, 8);
    const chat = await startChat(u.token, `first ${tag} [[mock chunks=20 chunk_delay_ms=2]]`);
    const [first] = await messagesOf(chat.id, u.token);
    const firstId = first?.id ?? 0;
    const slow = '[[mock chunks=30 chunk_delay_ms=3]]';
    const requests = Array.from({ length: 10 }, (_, i) => {
      if (i % 3 === 0) return call('PATCH', `/api/v2/chats/${chat.id}/messages/${firstId}`, { token: u.token, body: { content: `edit ${i} ${tag} ${slow}` } });
      const busy = i % 3 === 1 ? 'interrupt' : 'queue';
      return call('POST', `/api/v2/chats/${chat.id}/messages`, { token: u.token, body: { content: `post ${i} ${tag} ${slow}`, busy_behavior: busy } });
    });
    const answers = await Promise.all(requests);
    for (const a of answers) expect([200, 201, 202], a.text).toContain(a.status);
    // Drain: the queue runs one turn at a time until it is empty.
    for (let i = 0; i < 20 && (await roomOf(chat.id).idle()) === 'running'; i++);
    expect(await roomOf(chat.id).idle()).toBe('waiting');

    const calls = (await callsWith(tag)).sort((a, b) => a.started_at - b.started_at);
    expect(calls.length).toBeGreaterThan(1);
    for (let i = 1; i < calls.length; i++) {
      const prev = calls[i - 1];
      const cur = calls[i];
      expect(prev?.ended_at, `call ${i - 1} never ended`).toBeDefined();
      expect(cur?.started_at ?? 0, `call ${i} started before call ${i - 1} ended`).toBeGreaterThanOrEqual(prev?.ended_at ?? Infinity);
    }
    // Consistent: each answer directly follows the message it answers (the mock echoes it), the last message is an
    // answer, nothing is left queued. Two user messages may follow each other: a turn interrupted before its first
    // chunk writes no answer (docs/chats.md), and which request comes first is up to the race.
    const msgs = await messagesOf(chat.id, u.token);
    msgs.forEach((m, i) => {
      if (m.role !== 'assistant') {
        expect(m.role).toBe('user');
        return;
      }
      const asked = msgs[i - 1];
      expect(asked?.role, `answer ${m.id} follows a user message`).toBe('user');
      // An interrupted answer keeps its partial text: a prefix of the echo.
      const echo = `Echo: ${textOf(asked ?? m).split(' [[')[0] ?? ''}`;
      const text = textOf(m).trim();
      expect(text.startsWith(echo) || echo.startsWith(text), `answer ${m.id} ("${text}") answers message ${asked?.id} ("${echo}")`).toBe(true);
    });
    expect(msgs.at(-1)?.role).toBe('assistant');
    const queue = z.object({ queued_messages: z.array(z.unknown()) }).parse((await call('GET', `/api/v2/chats/${chat.id}/queue`, { token: u.token })).body);
    expect(queue.queued_messages).toEqual([]);
    const ids = msgs.map((m) => m.id);
    expect([...ids].sort((a, b) => a - b)).toEqual(ids);
  }, 60_000);

  it('concurrent edits of an idle chat run one turn each, one after the other, and keep the last edit', async () => {
    const u = await makeUser();
    const tag = crypto.randomUUID().slice(0, 8);
    const chat = await startChat(u.token, `idle ${tag}`);
    const [first] = await messagesOf(chat.id, u.token);
    const edits = await Promise.all(
      [1, 2, 3].map((i) => call('PATCH', `/api/v2/chats/${chat.id}/messages/${first?.id ?? 0}`, { token: u.token, body: { content: `edit ${i} ${tag}` } })),
    );
    for (const e of edits) expect(e.status, e.text).toBe(200);
    expect(await roomOf(chat.id).idle()).toBe('waiting');
    const calls = (await callsWith(tag)).sort((a, b) => a.started_at - b.started_at);
    for (let i = 1; i < calls.length; i++) expect(calls[i]?.started_at ?? 0).toBeGreaterThanOrEqual(calls[i - 1]?.ended_at ?? Infinity);
    const msgs = await messagesOf(chat.id, u.token);
    expect(msgs.map((m) => m.role)).toEqual(['user', 'assistant']);
    // The edits ran in some order; the one that ran last is what the chat holds, answered.
    const last = textOf(msgs[0] ?? { content: [] });
    expect(textOf(msgs[1] ?? { content: [] })).toBe(`Echo: ${last}`);
  });
});

describe('Idempotency-Key', () => {
  const post = (chatId: string, token: string, content: string, key?: string) =>
    call('POST', `/api/v2/chats/${chatId}/messages`, { token, body: { content }, headers: key ? { 'idempotency-key': key } : {} });

  it('a repeated POST /messages returns the same message; a different key stores a new one; a cold object too', async () => {
    const u = await makeUser();
    const chat = await startChat(u.token, 'start');
    const key = crypto.randomUUID();
    const a = await post(chat.id, u.token, 'once', key);
    expect(a.status, a.text).toBe(201);
    const b = await post(chat.id, u.token, 'once', key);
    expect(b.status).toBe(201);
    expect(b.body).toEqual(a.body);
    await roomOf(chat.id).idle();
    await abortAllDurableObjects();
    const c = await post(chat.id, u.token, 'once', key);
    expect(c.status).toBe(201);
    expect(z.object({ message: Message }).parse(c.body).message.id).toBe(z.object({ message: Message }).parse(a.body).message.id);
    const d = await post(chat.id, u.token, 'once', crypto.randomUUID());
    expect(d.status).toBe(201);
    await roomOf(chat.id).idle();
    expect((await messagesOf(chat.id, u.token)).map((m) => textOf(m))).toEqual(['start', 'Echo: start', 'once', 'Echo: once', 'once', 'Echo: once']);
  });

  it('a queued POST replays as the same 202, runs once, and replays as its message once a cold object finds it ran', async () => {
    const u = await makeUser();
    const gate = mockGate();
    const chat = await sdk(u.token).createChat({ content: `busy ${gate.directive()}` });
    await gate.waiting(1);
    const key = crypto.randomUUID();
    const a = await post(chat.id, u.token, 'queued once', key);
    expect(a.status).toBe(202);
    expect((await post(chat.id, u.token, 'queued once', key)).body).toEqual(a.body);
    await gate.open();
    expect(await roomOf(chat.id).idle()).toBe('waiting');
    const users = (await messagesOf(chat.id, u.token)).filter((m) => m.role === 'user').map((m) => textOf(m));
    expect(users).toEqual([`busy ${gate.directive()}`, 'queued once']);
    // Replayed after it ran: the first answer while the object remembers it, else the message it became.
    const warm = await post(chat.id, u.token, 'queued once', key);
    expect(warm.status).toBe(202);
    expect(warm.body).toEqual(a.body);
    await abortAllDurableObjects();
    const late = await post(chat.id, u.token, 'queued once', key);
    expect(late.status).toBe(201);
    expect(textOf(z.object({ message: Message }).parse(late.body).message)).toBe('queued once');
    expect((await messagesOf(chat.id, u.token)).filter((m) => m.role === 'user')).toHaveLength(2);
  });

  it('a repeated POST /chats returns the first chat and starts no second one', async () => {
    const u = await makeUser();
    const other = await makeUser();
    const key = crypto.randomUUID();
    const create = (token: string) => call('POST', '/api/v2/chats', { token, body: { content: 'keyed chat' }, headers: { 'idempotency-key': key } });
    const a = await create(u.token);
    expect(a.status, a.text).toBe(201);
    const b = await create(u.token);
    expect(b.status).toBe(201);
    expect(b.body).toEqual(a.body);
    const chat = Chat.parse(a.body);
    await roomOf(chat.id).idle();
    await abortAllDurableObjects();
    expect((await create(u.token)).body).toEqual(a.body);
    // The same key from another user is another chat.
    const theirs = await create(other.token);
    expect(theirs.status).toBe(201);
    expect(Chat.parse(theirs.body).id).not.toBe(chat.id);
    const mine = await sdk(u.token).listChats();
    expect(mine.map((c) => c.id)).toEqual([chat.id]);
    expect((await messagesOf(chat.id, u.token)).map((m) => textOf(m))).toEqual(['keyed chat', 'Echo: keyed chat']);
    await roomOf(Chat.parse(theirs.body).id).idle();
  });

  it('refuses a malformed key with 400 and stores nothing', async () => {
    const u = await makeUser();
    const chat = await startChat(u.token);
    for (const bad of ['x'.repeat(129), 'has space', 'é']) {
      const r = await post(chat.id, u.token, 'nope', bad);
      expect(r.status, JSON.stringify(bad)).toBe(400);
      expect(ErrorBody.parse(r.body).validations?.[0]?.field).toBe('idempotency-key');
    }
    const empty = await call('POST', `/api/v2/chats/${chat.id}/messages`, { token: u.token, body: { content: 'nope' }, headers: { 'idempotency-key': '' } });
    expect(empty.status).toBe(400);
    expect((await messagesOf(chat.id, u.token)).filter((m) => textOf(m) === 'nope')).toHaveLength(0);
  });
});

describe('errors after a commit', () => {
  it('an error after an edit committed resets the cache: nothing deleted is served again', async () => {
    const u = await makeUser();
    const chat = await startChat(u.token, 'keep me');
    for (const t of ['two', 'three']) {
      await call('POST', `/api/v2/chats/${chat.id}/messages`, { token: u.token, body: { content: t } });
      await roomOf(chat.id).idle();
    }
    const before = await messagesOf(chat.id, u.token);
    const edited = before[2]?.id ?? 0;
    // The re-read that follows the edit's commit fails once.
    await runInDurableObject(roomOf(chat.id), (room: ChatRoom) => {
      const store = (room as unknown as { store: { after: (afterId: number) => Promise<unknown> } }).store;
      const after = store.after.bind(store);
      let failures = 1;
      store.after = async (afterId) => {
        if (failures-- > 0) throw new Error('injected failure after the commit');
        return await after(afterId);
      };
    });
    const r = await call('PATCH', `/api/v2/chats/${chat.id}/messages/${edited}`, { token: u.token, body: { content: 'two, edited' } });
    expect(r.status).toBe(500);
    expect(ErrorBody.parse(r.body).message).toBe('An internal error occurred.');
    // The edit committed: every read now shows it, none the messages it dropped.
    const db = testDb();
    const live = await db.query('SELECT id FROM chat_messages WHERE chat_id = $1 AND NOT deleted ORDER BY id', [chat.id]);
    await db.close();
    const liveIds = z.array(z.object({ id: z.coerce.number() })).parse(live.rows).map((x) => x.id);
    expect(liveIds).toEqual(before.slice(0, 3).map((m) => m.id));
    expect((await messagesOf(chat.id, u.token)).map((m) => textOf(m))).toEqual(['keep me', 'Echo: keep me', 'two, edited']);
    const s = streamOf(chat.id, u.token);
    await s.until((x) => x.connected, within);
    expect(s.messages.map((m) => m.id)).toEqual(liveIds);
    await s.close();
  });
});
