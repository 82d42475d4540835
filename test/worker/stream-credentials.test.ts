/**
 * A stream does not outlive its credential: revoking the session or key it was opened with (logout, key deletion,
 * "log out other sessions", a password change, a suspension) closes it with 4401 within a second, wherever it is,
 * and so does the credential's expiry. Streams opened with other credentials stay open.
 */
import { env } from 'cloudflare:workers';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createKey } from '../../functions/services/users';
import { streamRegistryName } from '../../functions/core/key-shards';
import { call, makeOwner, makeUser, openSockets, startChat, testDb } from './helpers';
import { StreamClient } from './stream-client';

const KeyAnswer = z.object({ id: z.string(), key: z.string() });

async function login(email: string, password: string) {
  const r = await call('POST', '/api/v2/users/login', { body: { email, password } });
  expect(r.status, r.text).toBe(201);
  return z.object({ session_token: z.string() }).parse(r.body).session_token;
}

describe('streams outlive no credential', () => {
  it('logout closes the streams of that session within 1 s (4401), in every chat, and no other stream', async () => {
    const u = await makeUser();
    const other = await login(u.user.email, u.password);
    const a = await startChat(u.token, 'one');
    const b = await startChat(u.token, 'two');
    const revokedA = await StreamClient.connected(a.id, other);
    const revokedB = await StreamClient.connected(b.id, other);
    const kept = await StreamClient.connected(a.id, u.token);
    expect((await call('POST', '/api/v2/users/logout', { token: other })).status).toBe(204);
    // Closed by the logout itself (see openSockets): only the kept socket is still open.
    expect([await openSockets(a.id), await openSockets(b.id)]).toEqual([1, 0]);
    for (const s of [revokedA, revokedB]) {
      await s.waitClosed();
      expect(s.closed?.code).toBe(4401);
    }
    expect(kept.closed).toBeNull();
    // The registry forgot the chats whose last socket of the user closed; the kept one is still listed.
    expect(await env.STREAM_REGISTRY.getByName(streamRegistryName(u.user.id)).chats()).toEqual([a.id]);
    kept.close();
  });

  it('deleting an API key closes its streams; DELETE /users/me/sessions closes the other sessions but not this one', async () => {
    const u = await makeUser();
    const chat = await startChat(u.token, 'keys');
    const made = await call('POST', '/api/v2/users/me/keys', { token: u.token, body: { name: 'ci' } });
    const key = KeyAnswer.parse(made.body);
    const byKey = await StreamClient.connected(chat.id, key.key);
    const second = await login(u.user.email, u.password);
    const bySecond = await StreamClient.connected(chat.id, second);
    const mine = await StreamClient.connected(chat.id, u.token);
    expect((await call('DELETE', `/api/v2/users/me/keys/${key.id}`, { token: u.token })).status).toBe(204);
    expect(await openSockets(chat.id)).toBe(2);
    await byKey.waitClosed();
    expect(byKey.closed?.code).toBe(4401);
    expect(bySecond.closed).toBeNull();
    expect((await call('DELETE', '/api/v2/users/me/sessions', { token: u.token })).status).toBe(204);
    expect(await openSockets(chat.id)).toBe(1);
    await bySecond.waitClosed();
    expect(bySecond.closed?.code).toBe(4401);
    expect(mine.closed).toBeNull();
    mine.close();
  });

  it('a suspension closes every stream of the user at once', async () => {
    const owner = await makeOwner();
    const u = await makeUser();
    const chats = [await startChat(u.token, 'a'), await startChat(u.token, 'b')];
    const streams = await Promise.all(chats.map((c) => StreamClient.connected(c.id, u.token)));
    const r = await call('PATCH', `/api/v2/users/${u.user.id}`, { token: owner.token, body: { suspended: true } });
    expect(r.status, r.text).toBe(200);
    expect(await Promise.all(chats.map((c) => openSockets(c.id)))).toEqual([0, 0]);
    for (const s of streams) {
      await s.waitClosed();
      expect(s.closed?.code).toBe(4401);
    }
  });

  it('a stream closes with 4401 when its credential expires', async () => {
    const u = await makeUser();
    const chat = await startChat(u.token, 'short');
    const db = testDb();
    const short = await createKey(db, u.user.id, 'api_key', 'short', 2);
    await db.close();
    const s = await StreamClient.connected(chat.id, short.key);
    // The object's alarm fires at the key's expiry; nothing polls.
    await s.waitFor('the expiry', (c) => c.closed !== null, 10_000);
    expect(s.closed).toEqual({ code: 4401, reason: 'credential expired' });
    const again = await StreamClient.open(chat.id, short.key);
    expect(again instanceof StreamClient ? 101 : again.status).toBe(401);
  });

  it('a stream opened with a ticket belongs to the credential that asked for it: closed on its expiry and revocation', async () => {
    const u = await makeUser();
    const chat = await startChat(u.token, 'ticket');
    const db = testDb();
    const short = await createKey(db, u.user.id, 'api_key', 'short', 2);
    await db.close();
    const ticketOf = async (token: string) => {
      const r = await call('POST', `/api/v2/chats/${chat.id}/stream-ticket`, { token });
      expect(r.status, r.text).toBe(201);
      return z.object({ ticket: z.string() }).parse(r.body).ticket;
    };
    const byTicket = async (token: string) => {
      const s = await StreamClient.open(chat.id, null, undefined, await ticketOf(token));
      if (!(s instanceof StreamClient)) throw new Error(`stream refused: ${String(s.status)} ${s.body}`);
      await s.waitFor('connect', (c) => c.frames.length > 0);
      return s;
    };
    const expiring = await byTicket(short.key);
    const second = await login(u.user.email, u.password);
    const revoked = await byTicket(second);
    expect((await call('POST', '/api/v2/users/logout', { token: second })).status).toBe(204);
    expect(await openSockets(chat.id)).toBe(1);
    await revoked.waitClosed();
    expect(revoked.closed?.code).toBe(4401);
    await expiring.waitFor('the expiry', (c) => c.closed !== null, 10_000);
    expect(expiring.closed).toEqual({ code: 4401, reason: 'credential expired' });
  });
});
