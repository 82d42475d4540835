import { abortAllDurableObjects, runDurableObjectAlarm } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { call, ChatSchema, makeOwner, makeUser, messagesOf, mockGate, roomOf, startChat, testDb, textOf } from './helpers';
import { StreamClient, type StreamEvent } from './stream-client';

const slow = (n = 40, delay = 25) => `[[mock chunks=${n} chunk_delay_ms=${delay}]]`;
const post = (chatId: string, token: string, content: string) =>
  call('POST', `/api/v2/chats/${chatId}/messages`, { token, body: { content } });

/** The event types of a frame, for order checks. */
const kinds = (events: StreamEvent[]) => events.map((e) => e.type);

describe('connect sequence', () => {
  it('sends missed messages, status, queue, then the running turn from seq 0; parts precede the durable message', async () => {
    const u = await makeUser();
    const gate = mockGate();
    const created = await call('POST', '/api/v2/chats', { token: u.token, body: { content: `go ${slow(60, 2)} ${gate.directive(20)}` } });
    const chat = ChatSchema.parse(created.body);
    // 20 deltas are out and the model holds the rest: the turn is running with parts to replay.
    await gate.waiting(1);
    const s = await StreamClient.must(chat.id, u.token);
    await s.waitFor('the first frame', (c) => c.frames.length > 0);
    await gate.open();
    const first = s.frames[0] ?? [];
    const k = kinds(first);
    expect(k[0]).toBe('message');
    const statusAt = k.indexOf('status');
    expect(k.slice(0, statusAt).every((x) => x === 'message')).toBe(true);
    expect(k[statusAt + 1]).toBe('queue_update');
    expect(k.slice(statusAt + 2).every((x) => x === 'message_part')).toBe(true);
    expect(first[statusAt]).toMatchObject({ type: 'status', status: { status: 'running' } });
    await s.waitIdle();
    const parts = s.events.flatMap((e) => (e.type === 'message_part' ? [e.message_part] : []));
    expect(parts.map((p) => p.seq)).toEqual(parts.map((_, i) => i));
    const assembled = parts.map((p) => p.part.text).join('');
    const assistantAt = s.events.findIndex((e) => e.type === 'message' && e.message.role === 'assistant');
    const lastPartAt = s.events.map((e) => e.type).lastIndexOf('message_part');
    expect(assistantAt).toBeGreaterThan(lastPartAt);
    const msgs = await messagesOf(chat.id, u.token);
    expect(assembled).toBe(textOf(msgs[1] ?? { content: [] }));
    s.close();
  });

  it("batches a turn's deltas into few frames: the first at once, nothing lost, reordered or repeated", async () => {
    const u = await makeUser();
    const chat = await startChat(u.token, 'seed');
    const s = await StreamClient.must(chat.id, u.token);
    await s.waitFor('connect', (c) => c.messages().length === 2);
    const from = s.frames.length;
    expect((await post(chat.id, u.token, `batched ${slow(60, 2)}`)).status).toBe(201);
    await s.waitIdle();
    const frames = s.frames.slice(from).filter((f) => f.some((e) => e.type === 'message_part'));
    const parts = frames.flat().flatMap((e) => (e.type === 'message_part' ? [e.message_part] : []));
    expect(parts.map((p) => p.seq)).toEqual(Array.from({ length: 60 }, (_, i) => i));
    // One delta every ~2 ms for ~120 ms, flushed every 25 ms: a handful of frames, not 60.
    expect(frames.length).toBeLessThan(20);
    expect(frames[0]?.flatMap((e) => (e.type === 'message_part' ? [e.message_part.seq] : []))).toEqual([0]);
    // The durable message comes after the last delta, in the frame that flushes it or a later one.
    const tail = s.events.slice(s.events.findIndex((e) => e.type === 'message_part'));
    const lastPart = tail.map((e) => e.type).lastIndexOf('message_part');
    expect(tail.findIndex((e) => e.type === 'message' && e.message.role === 'assistant')).toBeGreaterThan(lastPart);
    s.close();
  });

  it('sockets connecting while deltas wait to be flushed get each part exactly once', async () => {
    const u = await makeUser();
    const chat = await startChat(u.token, 'seed');
    // The model sends its 80 deltas, then waits at the gate before finishing: the turn stays open until every
    // socket has connected, however slow the machine (on a fast one they connect while deltas still flow).
    const gate = mockGate();
    expect((await post(chat.id, u.token, `many ${slow(80, 3)} ${gate.directive(80)}`)).status).toBe(201);
    const late: StreamClient[] = [];
    for (let i = 0; i < 8; i++) {
      late.push(await StreamClient.must(chat.id, u.token, 2));
      await new Promise((r) => setTimeout(r, 17));
    }
    for (const c of late) await c.waitFor('the connect frame', (s) => s.frames.length > 0);
    await gate.waiting(1);
    await gate.open();
    for (const c of late) await c.waitIdle();
    const text = textOf((await messagesOf(chat.id, u.token)).at(-1) ?? { content: [] });
    for (const c of late) {
      const parts = c.events.flatMap((e) => (e.type === 'message_part' ? [e.message_part] : []));
      expect(parts.map((p) => p.seq)).toEqual(parts.map((_, i) => i));
      expect(parts.map((p) => p.part.text).join('')).toBe(text);
      c.close();
    }
  });

  it('two subscribers receive identical sequences', async () => {
    const u = await makeUser();
    const chat = await startChat(u.token);
    const a = await StreamClient.must(chat.id, u.token);
    const b = await StreamClient.must(chat.id, u.token);
    await a.waitFor('connect', (c) => c.frames.length > 0);
    await b.waitFor('connect', (c) => c.frames.length > 0);
    for (const t of ['one', 'two', `three ${slow(15, 5)}`]) {
      expect((await post(chat.id, u.token, t)).status).toBe(201);
      await roomOf(chat.id).idle();
    }
    // The connect status, then running and waiting for each of the 3 turns.
    const settled = (c: StreamClient) => c.messages().length === 8 && c.statuses().filter((x) => x === 'waiting').length === 4;
    await a.waitFor('3 turns', settled);
    await b.waitFor('3 turns', settled);
    expect(b.events).toEqual(a.events);
    a.close();
    b.close();
  });
});

describe('catch-up and the message cache', () => {
  it('a reconnect with every after_id from 0 to the newest gets exactly the missing messages, all from the cache', async () => {
    const u = await makeUser();
    const owner = await makeOwner();
    const chat = await startChat(u.token, 'first');
    for (const t of ['second', 'third']) {
      await post(chat.id, u.token, t);
      await roomOf(chat.id).idle();
    }
    const all = await messagesOf(chat.id, u.token);
    const ids = all.map((m) => m.id);
    const before = await roomOf(chat.id).stats();
    const newest = ids.at(-1) ?? 0;
    const first = ids[0] ?? 0;
    // Every id from just below the chat's first message to the newest (ids between belong to other chats).
    const afters = [0, ...Array.from({ length: newest - first + 2 }, (_, i) => first - 1 + i)];
    for (const n of afters) {
      const s = await StreamClient.must(chat.id, u.token, n);
      await s.waitFor('connect', (c) => c.frames.length > 0);
      expect(s.messages().map((m) => m.id), `after_id=${n}`).toEqual(ids.filter((id) => id > n));
      s.close();
    }
    const after = await roomOf(chat.id).stats();
    expect(after.dbCatchups - before.dbCatchups).toBe(0);
    expect(after.cacheCatchups - before.cacheCatchups).toBe(afters.length);
    const viaRoute = await call('GET', `/api/v2/chats/${chat.id}/stream-stats`, { token: owner.token });
    expect(viaRoute.status).toBe(200);
    expect(viaRoute.body).toMatchObject({ dbCatchups: after.dbCatchups, cacheCatchups: after.cacheCatchups });
    expect((await call('GET', `/api/v2/chats/${chat.id}/stream-stats`, { token: u.token })).status).toBe(403);
  });

  it('a cold object reads Postgres once, keeps the newest 256, and an after_id older than them reads Postgres again', async () => {
    const u = await makeUser();
    const chat = await startChat(u.token, 'seed');
    const db = testDb();
    // History written before this object instance existed (as after an eviction): 300 more messages.
    await db.query(
      `INSERT INTO chat_messages (chat_id, role, content)
       SELECT $1, CASE WHEN g % 2 = 0 THEN 'user' ELSE 'assistant' END::chat_message_role,
              jsonb_build_array(jsonb_build_object('type', 'text', 'text', 'bulk ' || g))
       FROM generate_series(1, 300) g`,
      [chat.id],
    );
    await db.close();
    await abortAllDurableObjects();
    const ids = (await messagesOf(chat.id, u.token)).map((m) => m.id);
    const all = [...ids];
    let page = ids;
    while (page.length === 200) {
      const r = await call('GET', `/api/v2/chats/${chat.id}/messages?after_id=${String(page.at(-1))}&limit=200`, { token: u.token });
      page = z.object({ messages: z.array(z.object({ id: z.number() }).loose()) }).parse(r.body).messages.map((m) => m.id);
      all.push(...page);
    }
    expect(all).toHaveLength(302);

    const s0 = await StreamClient.must(chat.id, u.token, 0);
    await s0.waitFor('connect', (c) => c.frames.length > 0);
    expect(s0.messages().map((m) => m.id)).toEqual(all);
    s0.close();
    const cold = await roomOf(chat.id).stats();
    expect(cold).toMatchObject({ dbCatchups: 1, cacheCatchups: 0, cached: 256 });

    const recent = all.at(-11) ?? 0;
    const s1 = await StreamClient.must(chat.id, u.token, recent);
    await s1.waitFor('connect', (c) => c.frames.length > 0);
    expect(s1.messages().map((m) => m.id)).toEqual(all.slice(-10));
    s1.close();
    expect(await roomOf(chat.id).stats()).toMatchObject({ dbCatchups: 1, cacheCatchups: 1 });

    const old = all[10] ?? 0;
    const s2 = await StreamClient.must(chat.id, u.token, old);
    await s2.waitFor('connect', (c) => c.frames.length > 0);
    expect(s2.messages().map((m) => m.id)).toEqual(all.slice(11));
    s2.close();
    expect(await roomOf(chat.id).stats()).toMatchObject({ dbCatchups: 2, cacheCatchups: 1, cached: 256 });
  });

  it("a cold object reads the model's history once, then serves later turns from its cache", async () => {
    const u = await makeUser();
    const chat = await startChat(u.token, 'first');
    await roomOf(chat.id).idle();
    await abortAllDurableObjects();
    for (const t of ['after eviction 1', 'after eviction 2', 'after eviction 3']) {
      expect((await post(chat.id, u.token, t)).status).toBe(201);
      await roomOf(chat.id).idle();
    }
    expect(await roomOf(chat.id).stats()).toMatchObject({ historyReads: 1 });
    // The model was given the whole history on every turn.
    const msgs = await messagesOf(chat.id, u.token);
    expect(msgs).toHaveLength(8);
    expect(textOf(msgs[7] ?? { content: [] })).toBe('Echo: after eviction 3');
  });

  it('after an eviction, a client reconnecting with its last id misses nothing and gets no duplicate', async () => {
    const u = await makeUser();
    const chat = await startChat(u.token);
    const s = await StreamClient.must(chat.id, u.token);
    await s.waitFor('connect', (c) => c.messages().length === 2);
    const lastSeen = s.messages().at(-1)?.id ?? 0;
    s.close();
    await abortAllDurableObjects();
    for (const t of ['while away 1', 'while away 2']) {
      await post(chat.id, u.token, t);
      await roomOf(chat.id).idle();
    }
    const again = await StreamClient.must(chat.id, u.token, lastSeen);
    await again.waitFor('catch-up', (c) => c.frames.length > 0);
    const expected = (await messagesOf(chat.id, u.token)).filter((m) => m.id > lastSeen).map((m) => m.id);
    expect(expected).toHaveLength(4);
    expect(again.messages().map((m) => m.id)).toEqual(expected);
    await post(chat.id, u.token, 'live');
    await roomOf(chat.id).idle();
    await again.waitFor('live messages', (c) => c.messages().length === 6);
    const seen = again.messages().map((m) => m.id);
    expect(new Set(seen).size).toBe(seen.length);
    expect([...seen].sort((a, b) => a - b)).toEqual(seen);
    again.close();
  });

  it('an edit sends full_refresh re-read from Postgres and counts it', async () => {
    const u = await makeUser();
    const chat = await startChat(u.token, 'to edit');
    const [first] = await messagesOf(chat.id, u.token);
    const before = await roomOf(chat.id).stats();
    const s = await StreamClient.must(chat.id, u.token);
    await call('PATCH', `/api/v2/chats/${chat.id}/messages/${first?.id ?? 0}`, { token: u.token, body: { content: 'edited' } });
    await s.waitFor('full_refresh', (c) => c.events.some((e) => e.type === 'full_refresh'));
    expect((await roomOf(chat.id).stats()).fullRefreshes).toBe(before.fullRefreshes + 1);
    await roomOf(chat.id).idle();
    s.close();
  });
});

describe('recovery', () => {
  it('an eviction mid-turn never leaves the chat running: the heartbeat alarm ends it as interrupted', async () => {
    const u = await makeUser();
    const gate = mockGate();
    const created = await call('POST', '/api/v2/chats', { token: u.token, body: { content: `long ${gate.directive(5)}` } });
    const chat = ChatSchema.parse(created.body);
    await gate.waiting(1);
    expect(ChatSchema.parse((await call('GET', `/api/v2/chats/${chat.id}`, { token: u.token })).body).status).toBe('running');
    await abortAllDurableObjects();
    expect(await runDurableObjectAlarm(roomOf(chat.id))).toBe(true);
    const after = ChatSchema.parse((await call('GET', `/api/v2/chats/${chat.id}`, { token: u.token })).body);
    expect(after.status).toBe('error');
    expect(after.last_error?.kind).toBe('interrupted');
    // The chat works again afterwards.
    expect((await post(chat.id, u.token, 'retry')).status).toBe(201);
    expect(await roomOf(chat.id).idle()).toBe('waiting');
  });

  it('the first request to a cold object also recovers an orphaned running chat', async () => {
    const u = await makeUser();
    const gate = mockGate();
    const created = await call('POST', '/api/v2/chats', { token: u.token, body: { content: `long ${gate.directive(5)}` } });
    const chat = ChatSchema.parse(created.body);
    await gate.waiting(1);
    await abortAllDurableObjects();
    const s = await StreamClient.must(chat.id, u.token);
    await s.waitFor('recovery', (c) => c.statuses().includes('error'));
    // The connect sequence carries the recovered status with its error.
    expect(s.events.find((e) => e.type === 'status')).toMatchObject({
      status: { status: 'error', last_error: { kind: 'interrupted' } },
    });
    s.close();
  });
});

describe('refusals and bad frames', () => {
  it('refuses before any socket opens: no token 401, other user 404, bad after_id 400, no upgrade 426', async () => {
    const owner = await makeUser();
    const other = await makeUser();
    const chat = await startChat(owner.token);
    const noToken = await StreamClient.open(chat.id, null);
    expect(noToken instanceof StreamClient ? 101 : noToken.status).toBe(401);
    const cross = await StreamClient.open(chat.id, other.token);
    expect(cross instanceof StreamClient ? 101 : cross.status).toBe(404);
    for (const bad of ['abc', '-1', '1.5', '']) {
      const r = await StreamClient.open(chat.id, owner.token, bad);
      expect(r instanceof StreamClient ? 101 : r.status, `after_id=${bad}`).toBe(400);
    }
    const plain = await call('GET', `/api/v2/chats/${chat.id}/stream`, { token: owner.token });
    expect(plain.status).toBe(426);
    expect((await roomOf(chat.id).stats()).sockets).toBe(0);
  });

  it('closes a socket that sends an unsupported frame with 1008, and the others keep receiving', async () => {
    const u = await makeUser();
    const chat = await startChat(u.token);
    const bad = await StreamClient.must(chat.id, u.token);
    const good = await StreamClient.must(chat.id, u.token);
    await good.waitFor('connect', (c) => c.frames.length > 0);
    // The exact ping is answered by the runtime; another spelling of it by the object.
    good.ws.send(JSON.stringify({ type: 'ping' }));
    good.ws.send('{ "type": "ping" }');
    await good.waitFor('two pongs', (c) => c.pongs === 2);
    bad.ws.send('{"type":"subscribe","chat":"other"}');
    await bad.waitFor('close', (c) => c.closed !== null);
    expect(bad.closed?.code).toBe(1008);
    await post(chat.id, u.token, 'still flowing');
    await roomOf(chat.id).idle();
    await good.waitFor('new messages', (c) => c.messages().length === 4);
    expect(good.closed).toBeNull();
    good.close();
  });
});
