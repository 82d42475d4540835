/** GET /chats/{id}/messages?around=<message_id>: the page around a message (opening a search result), warm and cold. */
import { abortAllDurableObjects } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import { call, makeUser, messagesOf, roomOf, sdk, startChat } from './helpers';

describe('messages around a message', () => {
  it('answers the older half of the page before it and the rest from it on, filling from the other side at the ends', async () => {
    const u = await makeUser();
    const chat = await startChat(u.token, 'first');
    for (const t of ['second', 'third', 'fourth']) {
      await sdk(u.token).sendMessage(chat.id, { content: t });
      await roomOf(chat.id).idle();
    }
    const ids = (await messagesOf(chat.id, u.token)).map((m) => m.id);
    expect(ids).toHaveLength(8);
    const id = (i: number) => ids[i] ?? -1;
    const cases: [number, number, number[]][] = [
      [id(4), 4, ids.slice(2, 6)],
      [id(3), 3, ids.slice(2, 5)],
      [id(4), 1, [id(4)]],
      [id(0), 4, ids.slice(0, 4)],
      [id(7), 4, ids.slice(4, 8)],
      [id(6), 5, ids.slice(3, 8)],
      [id(4), 50, ids],
      // An id past the newest: the newest page.
      [id(7) + 1000, 3, ids.slice(5, 8)],
    ];
    const around = async (m: number, limit: number) => (await sdk(u.token).messagesAround(chat.id, m, limit)).map((x) => x.id);
    const before = await roomOf(chat.id).stats();
    for (const [m, limit, want] of cases) expect(await around(m, limit), `${m} ${limit}`).toEqual(want);
    // Two pages each, both from the warm object's cache.
    expect(await roomOf(chat.id).stats()).toMatchObject({ cachePages: before.cachePages + 2 * cases.length, dbPages: before.dbPages });
    for (const [m, limit, want] of cases) {
      await abortAllDurableObjects();
      expect(await around(m, limit), `cold ${m} ${limit}`).toEqual(want);
    }
    // An edited-away message: the live page around where it was.
    await sdk(u.token).editMessage(chat.id, id(4), { content: 'third, again' });
    await roomOf(chat.id).idle();
    const now = (await messagesOf(chat.id, u.token)).map((m) => m.id);
    // The edit keeps the message's id, removes the later ones, and a new answer follows.
    expect(now.slice(0, 5)).toEqual(ids.slice(0, 5));
    expect(now).toHaveLength(6);
    expect(await around(id(5), 4)).toEqual([id(2), id(3), id(4), now[5]]);

    for (const bad of [`?around=${id(1)}&after_id=1`, `?around=${id(1)}&before_id=9`, '?around=-1', '?around=x', `?around=${id(1)}&limit=0`]) {
      const r = await call('GET', `/api/v2/chats/${chat.id}/messages${bad}`, { token: u.token });
      expect([bad, r.status]).toEqual([bad, 400]);
    }
    const both = await call('GET', `/api/v2/chats/${chat.id}/messages?around=${id(1)}&after_id=1`, { token: u.token });
    expect(both.body).toEqual({ message: 'Validation failed.', validations: [{ field: 'around', detail: 'cannot be combined with after_id or before_id' }] });
    const stranger = await makeUser();
    expect((await call('GET', `/api/v2/chats/${chat.id}/messages?around=${id(1)}`, { token: stranger.token })).status).toBe(404);
  });
});
