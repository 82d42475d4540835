/**
 * The stream as the server sends it (frames observed through the SDK before its resume rules): the connect sequence,
 * batching, catch-up from the cache, recovery, refusals and bad client frames.
 */
import { abortAllDurableObjects, runDurableObjectAlarm } from 'cloudflare:test';
import { exports } from 'cloudflare:workers';
import type { StreamEvent } from '@chatd-edge/sdk';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { call, makeOwner, makeUser, messagesOf, mockGate, roomOf, sdk, startChat, streamOf, testDb, textOf, watch, within } from './helpers';

const slow = (n = 40, delay = 25) => `[[mock chunks=${n} chunk_delay_ms=${delay}]]`;
const post = (chatId: string, token: string, content: string) => sdk(token).sendMessage(chatId, { content });

/** The event types of a frame, for order checks. */
const kinds = (events: readonly StreamEvent[]) => events.map((e) => e.type);
const partsOf = (events: readonly StreamEvent[]) => events.flatMap((e) => (e.type === 'message_part' ? [e.message_part] : []));

describe('connect sequence', () => {
  it('sends missed messages, status, queue, then the running turn from seq 0; parts precede the durable message', async () => {
    const u = await makeUser();
    const gate = mockGate();
    const chat = await sdk(u.token).createChat({ content: `go ${slow(60, 2)} ${gate.directive(20)}` });
    // 20 deltas are out and the model holds the rest: the turn is running with parts to replay.
    await gate.waiting(1);
    const s = streamOf(chat.id, u.token);
    const seen = watch(s);
    await s.until((x) => x.connected, within);
    await gate.open();
    const first = seen.frames[0] ?? [];
    const k = kinds(first);
    expect(k[0]).toBe('message');
    const statusAt = k.indexOf('status');
    expect(k.slice(0, statusAt).every((x) => x === 'message')).toBe(true);
    expect(k[statusAt + 1]).toBe('queue_update');
    expect(k.slice(statusAt + 2).every((x) => x === 'message_part')).toBe(true);
    expect(first[statusAt]).toMatchObject({ type: 'status', status: { status: 'running' } });
    await s.until(() => seen.turnEnded(), within);
    const parts = partsOf(seen.events);
    expect(parts.map((p) => p.seq)).toEqual(parts.map((_, i) => i));
    const assembled = parts.map((p) => p.part.text).join('');
    const assistantAt = seen.events.findIndex((e) => e.type === 'message' && e.message.role === 'assistant');
    const lastPartAt = seen.events.map((e) => e.type).lastIndexOf('message_part');
    expect(assistantAt).toBeGreaterThan(lastPartAt);
    const msgs = await messagesOf(chat.id, u.token);
    expect(assembled).toBe(textOf(msgs[1] ?? { content: [] }));
    await s.close();
  });

  it("batches a turn's deltas into few frames: the first at once, nothing lost, reordered or repeated", async () => {
    const u = await makeUser();
    const chat = await startChat(u.token, 'seed');
    const s = streamOf(chat.id, u.token);
    const seen = watch(s);
    await s.until((x) => x.messages.length === 2, within);
    const from = seen.frames.length;
    expect(await post(chat.id, u.token, `batched ${slow(60, 2)}`)).toHaveProperty('message');
    await s.until((x) => x.messages.length === 4 && seen.turnEnded(), within);
    const frames = seen.frames.slice(from).filter((f) => f.some((e) => e.type === 'message_part'));
    const parts = partsOf(frames.flat());
    expect(parts.map((p) => p.seq)).toEqual(Array.from({ length: 60 }, (_, i) => i));
    // One delta every ~2 ms for ~120 ms, flushed every 25 ms: a handful of frames, not 60.
    expect(frames.length).toBeLessThan(20);
    expect(frames[0]?.flatMap((e) => (e.type === 'message_part' ? [e.message_part.seq] : []))).toEqual([0]);
    // The durable message comes after the last delta, in the frame that flushes it or a later one.
    const tail = seen.events.slice(seen.events.findIndex((e) => e.type === 'message_part'));
    const lastPart = tail.map((e) => e.type).lastIndexOf('message_part');
    expect(tail.findIndex((e) => e.type === 'message' && e.message.role === 'assistant')).toBeGreaterThan(lastPart);
    await s.close();
  });

  it('sockets connecting while deltas wait to be flushed get each part exactly once', async () => {
    const u = await makeUser();
    const chat = await startChat(u.token, 'seed');
    // The model sends its 80 deltas, then waits at the gate before finishing: the turn stays open until every
    // socket has connected, however slow the machine (on a fast one they connect while deltas still flow).
    const gate = mockGate();
    expect(await post(chat.id, u.token, `many ${slow(80, 3)} ${gate.directive(80)}`)).toHaveProperty('message');
    const late = [];
    for (let i = 0; i < 8; i++) {
      const s = streamOf(chat.id, u.token, { afterId: 2 });
      late.push({ s, seen: watch(s) });
      await s.until((x) => x.connected, within);
      await new Promise((r) => setTimeout(r, 17));
    }
    await gate.waiting(1);
    await gate.open();
    for (const c of late) await c.s.until(() => c.seen.turnEnded(), within);
    const text = textOf((await messagesOf(chat.id, u.token)).at(-1) ?? { content: [] });
    for (const c of late) {
      const parts = partsOf(c.seen.events);
      expect(parts.map((p) => p.seq)).toEqual(parts.map((_, i) => i));
      expect(parts.map((p) => p.part.text).join('')).toBe(text);
      await c.s.close();
    }
  });

  it('two subscribers receive identical sequences', async () => {
    const u = await makeUser();
    const chat = await startChat(u.token);
    const a = streamOf(chat.id, u.token);
    const b = streamOf(chat.id, u.token);
    const seenA = watch(a);
    const seenB = watch(b);
    await a.until((x) => x.connected, within);
    await b.until((x) => x.connected, within);
    for (const t of ['one', 'two', `three ${slow(15, 5)}`]) {
      expect(await post(chat.id, u.token, t)).toHaveProperty('message');
      await roomOf(chat.id).idle();
    }
    // The connect status, then running and waiting for each of the 3 turns.
    for (const [s, seen] of [[a, seenA], [b, seenB]] as const) {
      await s.until((x) => x.messages.length === 8 && seen.statuses.filter((st) => st === 'waiting').length === 4, within);
    }
    expect(seenB.events).toEqual(seenA.events);
    await a.close();
    await b.close();
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
      const s = streamOf(chat.id, u.token, { afterId: n });
      await s.until((x) => x.connected, within);
      expect(s.messages.map((m) => m.id), `after_id=${n}`).toEqual(ids.filter((id) => id > n));
      await s.close();
    }
    const after = await roomOf(chat.id).stats();
    expect(after.dbCatchups - before.dbCatchups).toBe(0);
    expect(after.cacheCatchups - before.cacheCatchups).toBe(afters.length);
    expect(await sdk(owner.token).streamStats(chat.id)).toMatchObject({ dbCatchups: after.dbCatchups, cacheCatchups: after.cacheCatchups });
    await expect(sdk(u.token).streamStats(chat.id)).rejects.toMatchObject({ status: 403 });
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
    const all = [];
    for await (const m of sdk(u.token).messages(chat.id)) all.push(m.id);
    expect(all).toHaveLength(302);

    const s0 = streamOf(chat.id, u.token, { afterId: 0 });
    await s0.until((x) => x.connected, within);
    expect(s0.messages.map((m) => m.id)).toEqual(all);
    await s0.close();
    const cold = await roomOf(chat.id).stats();
    expect(cold).toMatchObject({ dbCatchups: 1, cacheCatchups: 0, cached: 256 });

    const recent = all.at(-11) ?? 0;
    const s1 = streamOf(chat.id, u.token, { afterId: recent });
    await s1.until((x) => x.connected, within);
    expect(s1.messages.map((m) => m.id)).toEqual(all.slice(-10));
    await s1.close();
    expect(await roomOf(chat.id).stats()).toMatchObject({ dbCatchups: 1, cacheCatchups: 1 });

    const old = all[10] ?? 0;
    const s2 = streamOf(chat.id, u.token, { afterId: old });
    await s2.until((x) => x.connected, within);
    expect(s2.messages.map((m) => m.id)).toEqual(all.slice(11));
    await s2.close();
    expect(await roomOf(chat.id).stats()).toMatchObject({ dbCatchups: 2, cacheCatchups: 1, cached: 256 });
  });

  it("a cold object reads the model's history once, then serves later turns from its cache", async () => {
    const u = await makeUser();
    const chat = await startChat(u.token, 'first');
    await roomOf(chat.id).idle();
    await abortAllDurableObjects();
    for (const t of ['after eviction 1', 'after eviction 2', 'after eviction 3']) {
      expect(await post(chat.id, u.token, t)).toHaveProperty('message');
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
    const s = streamOf(chat.id, u.token);
    await s.until((x) => x.messages.length === 2, within);
    const lastSeen = s.lastId;
    await s.close();
    await abortAllDurableObjects();
    for (const t of ['while away 1', 'while away 2']) {
      await post(chat.id, u.token, t);
      await roomOf(chat.id).idle();
    }
    const again = streamOf(chat.id, u.token, { afterId: lastSeen });
    const raw = watch(again);
    await again.until((x) => x.connected, within);
    const expected = (await messagesOf(chat.id, u.token)).filter((m) => m.id > lastSeen).map((m) => m.id);
    expect(expected).toHaveLength(4);
    expect(again.messages.map((m) => m.id)).toEqual(expected);
    await post(chat.id, u.token, 'live');
    await roomOf(chat.id).idle();
    await again.until((x) => x.messages.length === 6, within);
    // As the server sent them, before the SDK's own dedupe: no repeat, in order.
    const seen = raw.events.flatMap((e) => (e.type === 'message' ? [e.message.id] : []));
    expect(seen).toEqual(again.messages.map((m) => m.id));
    expect([...seen].sort((a, b) => a - b)).toEqual(seen);
    await again.close();
  });

  it('an edit sends full_refresh re-read from Postgres and counts it', async () => {
    const u = await makeUser();
    const chat = await startChat(u.token, 'to edit');
    const [first] = await messagesOf(chat.id, u.token);
    const before = await roomOf(chat.id).stats();
    const s = streamOf(chat.id, u.token);
    await s.until((x) => x.connected, within);
    await sdk(u.token).editMessage(chat.id, first?.id ?? 0, { content: 'edited' });
    await s.until((x) => x.resumeCounts.fullRefreshes === 1, within);
    expect((await roomOf(chat.id).stats()).fullRefreshes).toBe(before.fullRefreshes + 1);
    await roomOf(chat.id).idle();
    await s.close();
  });
});

describe('recovery', () => {
  it('an eviction mid-turn never leaves the chat running: the heartbeat alarm ends it as interrupted', async () => {
    const u = await makeUser();
    const gate = mockGate();
    const c = sdk(u.token);
    const chat = await c.createChat({ content: `long ${gate.directive(5)}` });
    await gate.waiting(1);
    expect((await c.getChat(chat.id)).status).toBe('running');
    await abortAllDurableObjects();
    expect(await runDurableObjectAlarm(roomOf(chat.id))).toBe(true);
    const after = await c.getChat(chat.id);
    expect(after.status).toBe('error');
    expect(after.last_error?.kind).toBe('interrupted');
    // The chat works again afterwards.
    expect(await post(chat.id, u.token, 'retry')).toHaveProperty('message');
    expect(await roomOf(chat.id).idle()).toBe('waiting');
  });

  it('the first request to a cold object also recovers an orphaned running chat', async () => {
    const u = await makeUser();
    const gate = mockGate();
    const chat = await sdk(u.token).createChat({ content: `long ${gate.directive(5)}` });
    await gate.waiting(1);
    await abortAllDurableObjects();
    const s = streamOf(chat.id, u.token);
    const seen = watch(s);
    await s.until(() => seen.statuses.includes('error'), within);
    // The connect sequence carries the recovered status with its error.
    expect(seen.events.find((e) => e.type === 'status')).toMatchObject({
      status: { status: 'error', last_error: { kind: 'interrupted' } },
    });
    await s.close();
  });
});

const RawFrame = z.array(z.looseObject({ type: z.string() }));

/** The stream's HTTP side, raw: what the SDK never sends (bad after_id, no upgrade) and the exact statuses. */
async function rawStream(chatId: string, token: string | null, query = '', upgrade = true) {
  const headers: Record<string, string> = upgrade ? { upgrade: 'websocket' } : {};
  if (token !== null) headers.authorization = `Bearer ${token}`;
  const res = await exports.default.fetch(`http://chatd.test/api/v2/chats/${chatId}/stream${query}`, { headers });
  const ws = res.webSocket;
  if (res.status === 101 && ws) ws.accept();
  return { status: res.status, ws };
}

describe('refusals and bad frames', () => {
  it('refuses before any socket opens: no token 401, other user 404, bad after_id 400, no upgrade 426', async () => {
    const owner = await makeUser();
    const other = await makeUser();
    const chat = await startChat(owner.token);
    expect((await rawStream(chat.id, null)).status).toBe(401);
    expect((await rawStream(chat.id, other.token)).status).toBe(404);
    for (const bad of ['abc', '-1', '1.5', '']) {
      expect((await rawStream(chat.id, owner.token, `?after_id=${bad}`)).status, `after_id=${bad}`).toBe(400);
    }
    expect((await rawStream(chat.id, owner.token, '', false)).status).toBe(426);
    expect((await call('GET', `/api/v2/chats/${chat.id}/stream`, { token: owner.token })).status).toBe(426);
    expect((await roomOf(chat.id).stats()).sockets).toBe(0);
  });

  it('closes a socket that sends an unsupported frame with 1008, and the others keep receiving', async () => {
    const u = await makeUser();
    const chat = await startChat(u.token);
    const bad = (await rawStream(chat.id, u.token)).ws;
    const good = (await rawStream(chat.id, u.token)).ws;
    if (!bad || !good) throw new Error('the stream was refused');
    const got = { pongs: 0, messages: 0, closed: null as number | null, badClosed: null as number | null };
    good.addEventListener('message', (e) => {
      const data = String(e.data);
      if (data === '{"type":"pong"}') got.pongs += 1;
      else got.messages += RawFrame.parse(JSON.parse(data)).filter((x) => x.type === 'message').length;
    });
    good.addEventListener('close', (e) => {
      got.closed = e.code;
    });
    bad.addEventListener('close', (e) => {
      got.badClosed = e.code;
    });
    await expect.poll(() => got.messages, { timeout: 10_000, interval: 5 }).toBe(2);
    // The exact ping is answered by the runtime; another spelling of it by the object.
    good.send(JSON.stringify({ type: 'ping' }));
    good.send('{ "type": "ping" }');
    await expect.poll(() => got.pongs, { timeout: 10_000, interval: 5 }).toBe(2);
    bad.send('{"type":"subscribe","chat":"other"}');
    await expect.poll(() => got.badClosed, { timeout: 10_000, interval: 5 }).toBe(1008);
    await post(chat.id, u.token, 'still flowing');
    await roomOf(chat.id).idle();
    await expect.poll(() => got.messages, { timeout: 10_000, interval: 5 }).toBe(4);
    expect(got.closed).toBeNull();
    good.close(1000, 'done');
  });
});
