/**
 * Postgres outages, caused for real: the tests' own Postgres is stopped and started again (`postgres.pause/resume`)
 * at three points of a turn. Every answer the model produced is stored exactly once, the chats say what is happening
 * meanwhile (`database_unavailable`), and they settle by themselves within 10 s of Postgres answering again.
 */
import { abortAllDurableObjects, runDurableObjectAlarm, runInDurableObject } from 'cloudflare:test';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import type { ChatRoom } from '../../durable-objects/chat-room';
import { call, lockWaiters, makeUser, messagesOf, mockGate, postgres, roomOf, sdk, startChat, streamOf, testDb, textOf, watch } from './helpers';

/** The reply the mock model streams for `text` with `chunks` deltas: the echo's words, cycled. */
function reply(text: string, chunks: number): string {
  const words = `Echo: ${text}`.split(' ');
  return Array.from({ length: chunks }, (_, i) => words[i % words.length]).join(' ');
}

type Seen = ReturnType<typeof watch>;
const sawDbUnavailable = (c: Seen) => () =>
  c.events.some((e) => e.type === 'status' && e.status.status === 'running' && e.status.last_error?.kind === 'database_unavailable');

/** The stream shows the durable assistant message, then the chat waiting, after what it had seen so far. */
const settledAfter = (c: Seen, from: number) => () => {
  const tail = c.events.slice(from);
  const at = tail.findIndex((e) => e.type === 'message' && e.message.role === 'assistant');
  return at >= 0 && tail.slice(at).some((e) => e.type === 'status' && e.status.status === 'waiting' && !e.status.last_error);
};

async function rows(chatId: string) {
  const db = testDb();
  try {
    const r = await db.query('SELECT role::text AS role, content FROM chat_messages WHERE chat_id = $1 AND NOT deleted ORDER BY id', [chatId]);
    return z.array(z.object({ role: z.string(), content: z.array(z.looseObject({ type: z.string() })) })).parse(r.rows);
  } finally {
    await db.close();
  }
}

/** Starts a chat whose first turn streams `chunks` deltas and waits at a gate after `held` of them. */
async function heldChat(token: string, text: string, chunks: number, held: number) {
  const gate = mockGate();
  const chat = await sdk(token).createChat({ content: `${text} [[mock chunks=${chunks}]] ${gate.directive(held)}` });
  await gate.waiting(1);
  const stream = streamOf(chat.id, token);
  const seen = watch(stream);
  await stream.until((x) => x.partial?.parts.length === held, { timeoutMs: 30_000 });
  return { chat, gate, stream, seen, text };
}

/**
 * One outage of `seconds`, hitting three chats at three points of a turn:
 *  1. before the user insert: a message POSTed meanwhile gets 503 and is not stored; its retry with the same
 *     Idempotency-Key after the outage stores it once;
 *  2. during the model stream: the model finishes while Postgres is down;
 *  3. during the assistant insert: the insert is in flight (blocked on a row lock) when Postgres stops.
 */
async function outage(seconds: number) {
  const u = await makeUser();
  const tag = crypto.randomUUID().slice(0, 8);
  const idle = await startChat(u.token, `one ${tag}`);
  const streamed = await heldChat(u.token, `two ${tag}`, 12, 4);
  const inserting = await heldChat(u.token, `three ${tag}`, 9, 9);

  // Point 3: hold the chat's row, let the model finish, and wait until its ending's insert is blocked on the lock.
  const locker = testDb();
  const holding = locker
    .inTx(async (tx) => {
      await tx.query('SELECT 1 FROM chats WHERE id = $1 FOR UPDATE', [inserting.chat.id]);
      await inserting.gate.open();
      await lockWaiters(tx, 1);
      await postgres.pause();
    })
    .catch(() => 'cut');
  expect(await holding).toBe('cut');
  await locker.close();
  const down = Date.now();

  // Point 2: the model answers while Postgres is down.
  await streamed.gate.open();
  for (const h of [streamed, inserting]) await h.stream.until(sawDbUnavailable(h.seen), { timeoutMs: 20_000 });
  expect(await sdk(u.token).getChat(streamed.chat.id)).toMatchObject({ status: 'running', last_error: { kind: 'database_unavailable' } });
  // A retry that fails meanwhile (the object's alarm, with Postgres still down) costs the object nothing it holds: a
  // socket that connects after it is still served from memory.
  await runInDurableObject(roomOf(streamed.chat.id), (room: ChatRoom) => room.alarm());
  expect((await roomOf(streamed.chat.id).stats()).outbox).toBe(1);
  // A socket that connects now gets the finished turn's parts from seq 0, as for a running turn.
  const late = streamOf(streamed.chat.id, u.token);
  const lateSeen = watch(late);
  await late.until((x) => x.partial !== null, { timeoutMs: 30_000 });
  const replayed = lateSeen.events.flatMap((e) => (e.type === 'message_part' ? [e.message_part] : []));
  expect(replayed[0]?.seq).toBe(0);
  expect(replayed.map((p) => ('text' in p.part ? p.part.text : '')).join('')).toBe(reply(streamed.text, 12));
  expect(late.partial?.text).toBe(reply(streamed.text, 12));

  // Point 1: a message sent during the outage is refused and not stored.
  const key = crypto.randomUUID();
  const send = () => call('POST', `/api/v2/chats/${idle.id}/messages`, { token: u.token, body: { content: `four ${tag}` }, headers: { 'idempotency-key': key } });
  const refused = await send();
  expect(refused.status, refused.text).toBe(503);

  const marks = [streamed.seen, inserting.seen].map((s) => s.events.length);
  await new Promise((r) => setTimeout(r, Math.max(0, seconds * 1000 - (Date.now() - down))));
  await postgres.resume();
  const up = Date.now();
  const settle: number[] = [];
  await Promise.all(
    [streamed, inserting].map(async (h, i) => {
      await h.stream.until(settledAfter(h.seen, marks[i] ?? 0), { timeoutMs: 30_000 });
      settle.push(Date.now() - up);
    }),
  );
  const retried = await send();
  expect(retried.status, retried.text).toBe(201);
  const again = await send();
  expect(again.body).toEqual(retried.body);
  expect(await roomOf(idle.id).idle()).toBe('waiting');

  // Exactly one answer per turn, with exactly the text the model sent; nothing duplicated by the retries.
  expect((await rows(streamed.chat.id)).map((m) => [m.role, textOf(m)])).toEqual([
    ['user', `two ${tag} [[mock chunks=12]] ${streamed.gate.directive(4)}`],
    ['assistant', reply(streamed.text, 12)],
  ]);
  expect((await rows(inserting.chat.id)).map((m) => m.role)).toEqual(['user', 'assistant']);
  expect(textOf((await rows(inserting.chat.id))[1] ?? { content: [] })).toBe(reply(inserting.text, 9));
  expect((await rows(idle.id)).map((m) => [m.role, textOf(m)])).toEqual([
    ['user', `one ${tag}`],
    ['assistant', `Echo: one ${tag}`],
    ['user', `four ${tag}`],
    ['assistant', `Echo: four ${tag}`],
  ]);
  for (const [s, seen] of [[streamed.stream, streamed.seen], [inserting.stream, inserting.seen], [late, lateSeen]] as const) {
    const assistants = seen.events.filter((e) => e.type === 'message' && e.message.role === 'assistant');
    expect(assistants).toHaveLength(1);
    // What a client shows: the turn's text, once, then settled.
    expect(s.messages.filter((m) => m.role === 'assistant')).toHaveLength(1);
    expect(s.partial).toBeNull();
    await s.close();
  }
  console.log(JSON.stringify({ outage_s: seconds, settled_ms: settle }));
  return settle;
}

describe('Postgres outages', () => {
  // A test that fails mid-outage must not leave Postgres stopped for the next ones (resume is a no-op when it runs).
  afterEach(() => postgres.resume());

  it('a 5 s outage before the user insert, during the stream and during the assistant insert loses nothing', async () => {
    const settle = await outage(5);
    for (const ms of settle) expect(ms).toBeLessThan(10_000);
  }, 60_000);

  it('a 30 s outage (past the connect timeout) loses nothing and never leaves a chat silently running', async () => {
    const settle = await outage(30);
    for (const ms of settle) expect(ms).toBeLessThan(10_000);
  }, 90_000);

  it('an object evicted mid-outage still writes the answer after it restarts, with nobody touching it', async () => {
    const u = await makeUser();
    const held = await heldChat(u.token, `evicted ${crypto.randomUUID().slice(0, 8)}`, 6, 2);
    await postgres.pause();
    await held.gate.open();
    await held.stream.until(sawDbUnavailable(held.seen), { timeoutMs: 20_000 });
    expect((await roomOf(held.chat.id).stats()).outbox).toBe(1);
    await abortAllDurableObjects();
    // The restarted object's alarm retries on its own; only Postgres is watched here, never the object.
    await postgres.resume();
    const db = testDb();
    const deadline = Date.now() + 10_000;
    for (;;) {
      const r = await db.query("SELECT count(*)::int AS n FROM chats c JOIN chat_messages m ON m.chat_id = c.id WHERE c.id = $1 AND c.status = 'waiting' AND m.role = 'assistant'", [held.chat.id]);
      if (z.object({ n: z.number() }).parse(r.rows[0]).n === 1) break;
      if (Date.now() > deadline) throw new Error('the evicted chat did not settle within 10 s of Postgres returning');
      await new Promise((res) => setTimeout(res, 50));
    }
    await db.close();
    expect((await rows(held.chat.id)).map((m) => [m.role, textOf(m)])).toEqual([
      ['user', `${held.text} [[mock chunks=6]] ${held.gate.directive(2)}`],
      ['assistant', reply(held.text, 6)],
    ]);
    expect((await roomOf(held.chat.id).stats()).outbox).toBe(0);
  }, 60_000);

  it('past OUTBOX_GIVE_UP_MS the chat shows error, keeps the answer, and writes it when Postgres returns', async () => {
    const u = await makeUser();
    const held = await heldChat(u.token, `patience ${crypto.randomUUID().slice(0, 8)}`, 3, 1);
    await postgres.pause();
    try {
      await held.gate.open();
      await held.stream.until(sawDbUnavailable(held.seen), { timeoutMs: 20_000 });
      // Age the waiting entry past the give-up time (15 minutes by default) instead of waiting for it.
      await runInDurableObject(roomOf(held.chat.id), (_room: ChatRoom, state) => {
        state.storage.sql.exec('UPDATE outbox SET created_at = created_at - 3600000');
      });
      await runDurableObjectAlarm(roomOf(held.chat.id));
      await held.stream.until((x) => x.status?.status === 'error', { timeoutMs: 10_000 });
      expect(await sdk(u.token).getChat(held.chat.id)).toMatchObject({ status: 'error', last_error: { kind: 'database_unavailable' } });
    } finally {
      await postgres.resume();
    }
    const from = held.seen.events.length;
    // Given up, it retries once a minute: the next request drains it at once.
    const r = await call('POST', `/api/v2/chats/${held.chat.id}/messages`, { token: u.token, body: { content: 'and now' } });
    expect(r.status, r.text).toBe(201);
    await held.stream.until(settledAfter(held.seen, from), { timeoutMs: 10_000 });
    expect(await roomOf(held.chat.id).idle()).toBe('waiting');
    const texts = (await messagesOf(held.chat.id, u.token)).map((m) => [m.role, textOf(m)]);
    expect(texts.slice(1)).toEqual([
      ['assistant', reply(held.text, 3)],
      ['user', 'and now'],
      ['assistant', 'Echo: and now'],
    ]);
    await held.stream.close();
  }, 60_000);

  it('reads the same chat, messages and stream while Postgres is down, from the object', async () => {
    const u = await makeUser();
    const chat = await startChat(u.token, 'cached');
    await postgres.pause();
    try {
      const c = sdk(u.token);
      expect((await c.getChat(chat.id)).id).toBe(chat.id);
      expect((await c.listMessages(chat.id)).messages.map((m) => textOf(m))).toEqual(['cached', 'Echo: cached']);
      const s = streamOf(chat.id, u.token);
      await s.until((x) => x.messages.length === 2, { timeoutMs: 10_000 });
      await s.close();
      // Writes are refused, and nothing is stored.
      const r = await call('POST', `/api/v2/chats/${chat.id}/messages`, { token: u.token, body: { content: 'lost?' } });
      expect(r.status).toBe(503);
    } finally {
      await postgres.resume();
    }
    expect((await rows(chat.id)).map((m) => textOf(m))).toEqual(['cached', 'Echo: cached']);
  }, 30_000);
});
