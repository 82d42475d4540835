/**
 * Stream tickets: `POST /chats/{id}/stream-ticket`, then `GET /chats/{id}/stream?ticket=` with no token. The chat's
 * object mints and consumes them (durable-objects/room/tickets.ts); unknown, expired and used ones are 401 before
 * any upgrade, and the socket keeps the key id of the credential that minted the ticket.
 */
import { abortAllDurableObjects, runInDurableObject } from 'cloudflare:test';
import { exports } from 'cloudflare:workers';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import type { ChatRoom } from '../../durable-objects/chat-room';
import { MAX_TICKETS, TICKET_TTL_MS, Tickets } from '../../durable-objects/room/tickets';
import { parseToken } from '../../functions/lib/tokens';
import { StreamTicket } from '../../functions/core/shapes/chat';
import { call, ErrorBody, makeUser, roomOf, startChat } from './helpers';

const streamUrl = (chatId: string, q: string) => `http://chatd.test/api/v2/chats/${chatId}/stream?${q}`;

/** Opens the stream with only a ticket (as a browser does): the status, and the socket when upgraded. */
async function openWithTicket(chatId: string, ticket: string, headers: Record<string, string> = { upgrade: 'websocket' }) {
  const res = await exports.default.fetch(streamUrl(chatId, `ticket=${ticket}`), { headers });
  const ws = res.webSocket;
  if (res.status === 101 && ws) {
    ws.accept();
    return { status: 101, ws, body: null };
  }
  return { status: res.status, ws: null, body: ErrorBody.parse(await res.json()) };
}

async function mint(chatId: string, token: string) {
  const r = await call('POST', `/api/v2/chats/${chatId}/stream-ticket`, { token });
  expect(r.status).toBe(201);
  return StreamTicket.parse(r.body);
}

const Attachment = z.object({ userId: z.string(), keyId: z.string(), lastId: z.number() });

describe('the Tickets module', () => {
  it('mints tickets that work once, until they expire, and keeps at most MAX_TICKETS', async () => {
    const u = await makeUser();
    const chat = await startChat(u.token);
    await runInDurableObject(roomOf(chat.id), async (_room: ChatRoom, state) => {
      let now = 1_000_000;
      const tickets = new Tickets(state.storage.kv, () => now);
      const a = await tickets.mint({ userId: 'u1', keyId: 'k1', keyExpiresAt: null, groupIds: ['g1'] });
      expect(a.ticket).toMatch(/^[A-Za-z0-9]{43}$/);
      expect(Date.parse(a.expires_at)).toBe(now + TICKET_TTL_MS);
      expect(await tickets.consume(a.ticket)).toEqual({ userId: 'u1', keyId: 'k1', keyExpiresAt: null, groupIds: ['g1'] });
      expect(await tickets.consume(a.ticket)).toBeNull();
      expect(await tickets.consume('nope')).toBeNull();

      const b = await tickets.mint({ userId: 'u1', keyId: 'k1', keyExpiresAt: null, groupIds: [] });
      now += TICKET_TTL_MS - 1;
      const c = await tickets.mint({ userId: 'u1', keyId: 'k2', keyExpiresAt: now + 5_000, groupIds: [] });
      now += 1;
      expect(await tickets.consume(b.ticket)).toBeNull();
      expect(await tickets.consume(c.ticket)).toEqual({ userId: 'u1', keyId: 'k2', keyExpiresAt: 1_000_000 + TICKET_TTL_MS - 1 + 5_000, groupIds: [] });

      // Expired ones go when the next is minted; beyond MAX_TICKETS the oldest go.
      const minted = [];
      for (let i = 0; i < MAX_TICKETS + 5; i++) {
        now += 1;
        minted.push(await tickets.mint({ userId: 'u1', keyId: `k${i}`, keyExpiresAt: null, groupIds: [] }));
      }
      expect([...state.storage.kv.list({ prefix: 'ticket:' })].length).toBe(MAX_TICKETS);
      expect(await tickets.consume(minted[0]?.ticket ?? '')).toBeNull();
      expect(await tickets.consume(minted.at(-1)?.ticket ?? '')).toEqual({ userId: 'u1', keyId: `k${MAX_TICKETS + 4}`, keyExpiresAt: null, groupIds: [] });
      // Stored under its hash: the ticket itself is nowhere in storage.
      const last = minted.at(-2)?.ticket ?? '';
      expect(JSON.stringify([...state.storage.kv.list({ prefix: 'ticket:' })])).not.toContain(last);
    });
  });
});

describe('POST /chats/{id}/stream-ticket and ?ticket=', () => {
  it('opens the stream with no token, once; the socket keeps the key of the credential that minted it', async () => {
    const u = await makeUser();
    const chat = await startChat(u.token);
    const t = await mint(chat.id, u.token);
    const left = Date.parse(t.expires_at) - Date.now();
    expect(left).toBeGreaterThan(50_000);
    expect(left).toBeLessThanOrEqual(TICKET_TTL_MS);

    const first = await openWithTicket(chat.id, t.ticket);
    expect(first.status).toBe(101);
    const attachments = await runInDurableObject(roomOf(chat.id), (_room: ChatRoom, state) =>
      state.getWebSockets().map((ws) => Attachment.parse(ws.deserializeAttachment())),
    );
    expect(attachments).toEqual([{ userId: u.user.id, keyId: parseToken(u.token)?.id, lastId: expect.any(Number) as number }]);

    const again = await openWithTicket(chat.id, t.ticket);
    expect(again.status).toBe(401);
    expect(again.body?.message).toMatch(/unknown, expired or already used/);
    first.ws?.close(1000, 'done');
  });

  it('refuses unknown, malformed, expired and other chats\' tickets before the upgrade', async () => {
    const u = await makeUser();
    const chat = await startChat(u.token);
    const other = await startChat(u.token);
    expect((await openWithTicket(chat.id, 'A'.repeat(43))).status).toBe(401);
    expect((await openWithTicket(chat.id, 'not-a-ticket!')).status).toBe(400);

    // A ticket opens only its own chat's stream (the other chat's object never minted it), and is then spent there.
    const t = await mint(other.id, u.token);
    expect((await openWithTicket(chat.id, t.ticket)).status).toBe(401);

    // Expiry: the ticket is aged in the object's storage, 60 s are not waited for.
    const old = await mint(chat.id, u.token);
    await runInDurableObject(roomOf(chat.id), (_room: ChatRoom, state) => {
      for (const [k, v] of state.storage.kv.list({ prefix: 'ticket:' })) {
        const stored = z.object({ expiresAt: z.number() }).loose().parse(v);
        state.storage.kv.put(k, { ...stored, expiresAt: Date.now() - 1 });
      }
    });
    expect((await openWithTicket(chat.id, old.ticket)).status).toBe(401);
  });

  it('a ticket is not spent by a request that is not an upgrade (426), nor usable with forged identity headers', async () => {
    const u = await makeUser();
    const victim = await makeUser();
    const chat = await startChat(u.token);
    const t = await mint(chat.id, u.token);
    expect((await openWithTicket(chat.id, t.ticket, {})).status).toBe(426);
    const s = await openWithTicket(chat.id, t.ticket);
    expect(s.status).toBe(101);
    s.ws?.close(1000, 'done');
    // Headers meant for the object from the Worker are dropped at the route.
    const forged = await openWithTicket(chat.id, 'B'.repeat(43), { upgrade: 'websocket', 'x-chatd-user': u.user.id, 'x-chatd-key': 'x' });
    expect(forged.status).toBe(401);
    const victimsChat = await startChat(victim.token);
    const forged2 = await exports.default.fetch(streamUrl(victimsChat.id, 'after_id=0'), {
      headers: { upgrade: 'websocket', authorization: `Bearer ${u.token}`, 'x-chatd-user': victim.user.id },
    });
    expect(forged2.status).toBe(404);
  });

  it('a ticket minted before an eviction works once after it', async () => {
    const u = await makeUser();
    const chat = await startChat(u.token);
    const t = await mint(chat.id, u.token);
    await abortAllDurableObjects();
    const s = await openWithTicket(chat.id, t.ticket);
    expect(s.status).toBe(101);
    s.ws?.close(1000, 'done');
    expect((await openWithTicket(chat.id, t.ticket)).status).toBe(401);
  });

  it('minting needs the chat\'s owner: no token 401, another user 404', async () => {
    const u = await makeUser();
    const other = await makeUser();
    const chat = await startChat(u.token);
    expect((await call('POST', `/api/v2/chats/${chat.id}/stream-ticket`)).status).toBe(401);
    expect((await call('POST', `/api/v2/chats/${chat.id}/stream-ticket`, { token: other.token })).status).toBe(404);
  });
});
