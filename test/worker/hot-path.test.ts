import { env } from 'cloudflare:workers';
import { describe, expect, it } from 'vitest';
import { pushCenterName } from '../../functions/core/webpush';
import { dbStats } from '../../functions/core/db';
import { call, makeUser, roomOf, startChat } from './helpers';

describe('the hot path opens no Postgres connection per request', () => {
  it('authenticated chat reads and message posts reuse the objects’ warm connections', async () => {
    const u = await makeUser();
    const chat = await startChat(u.token);
    // Warm up: the key's directory shard, the chat's object and the user's push object open their connections
    // once (the first turn's push runs in the background after the turn, so warm that one explicitly).
    expect((await call('GET', `/api/v2/chats/${chat.id}`, { token: u.token })).status).toBe(200);
    await env.PUSH_CENTER.getByName(pushCenterName(u.user.id)).dispatch(u.user.id, {
      title: 'warm-up',
      body: 'warm-up',
      data: { url: '/', chat_id: null },
    });
    const before = dbStats.connects;
    for (let i = 0; i < 10; i++) {
      expect((await call('GET', `/api/v2/chats/${chat.id}`, { token: u.token })).status).toBe(200);
      expect((await call('GET', '/api/v2/users/me', { token: u.token })).status).toBe(200);
      const r = await call('POST', `/api/v2/chats/${chat.id}/messages`, { token: u.token, body: { content: `turn ${i}` } });
      expect(r.status).toBe(201);
      await roomOf(chat.id).idle();
    }
    expect(dbStats.connects - before).toBe(0);
  });

  it('a revoked session stops working at once, even though lookups are cached', async () => {
    const u = await makeUser();
    expect((await call('GET', '/api/v2/users/me', { token: u.token })).status).toBe(200);
    expect((await call('GET', '/api/v2/users/me', { token: u.token })).status).toBe(200);
    expect((await call('POST', '/api/v2/users/logout', { token: u.token })).status).toBe(204);
    expect((await call('GET', '/api/v2/users/me', { token: u.token })).status).toBe(401);
  });
});
