/** `POST /chats/{id}/fork` (docs/conversation-tools.md): copies of the live messages up to one, in a new chat of the caller's. */
import { describe, expect, it } from 'vitest';
import { call, ErrorBody, makeUser, messagesOf, roomOf, sdk, startChat, testDb } from './helpers';

describe('fork', () => {
  it("copies the live messages up to the message into a new chat of the caller's, and leaves the original as it was", async () => {
    const u = await makeUser();
    const chat = await startChat(u.token, 'one');
    await sdk(u.token).sendMessage(chat.id, { content: 'two' });
    await roomOf(chat.id).idle();
    await sdk(u.token).sendMessage(chat.id, { content: 'three' });
    await roomOf(chat.id).idle();
    const before = await messagesOf(chat.id, u.token);
    expect(before.map((m) => m.role)).toEqual(['user', 'assistant', 'user', 'assistant', 'user', 'assistant']);
    const at = before[3];
    if (!at) throw new Error('no message');
    const fork = await sdk(u.token).forkChat(chat.id, { message_id: at.id });
    expect(fork).toMatchObject({ owner_id: u.user.id, title: chat.title, status: 'waiting', forked_from: { chat_id: chat.id, message_id: at.id } });
    expect(fork.id).not.toBe(chat.id);
    const copied = await messagesOf(fork.id, u.token);
    expect(copied.map((m) => ({ role: m.role, content: m.content, created_at: m.created_at, usage: m.usage }))).toEqual(
      before.slice(0, 4).map((m) => ({ role: m.role, content: m.content, created_at: m.created_at, usage: m.usage })),
    );
    expect(copied.every((m) => m.chat_id === fork.id)).toBe(true);
    expect((await sdk(u.token).getChat(fork.id)).forked_from).toEqual({ chat_id: chat.id, message_id: at.id });
    // The original: untouched, and not forked from anything.
    expect(await messagesOf(chat.id, u.token)).toEqual(before);
    expect((await sdk(u.token).getChat(chat.id)).forked_from).toBeNull();
    // The fork has its own object: a turn there adds to the fork only.
    await sdk(u.token).sendMessage(fork.id, { content: 'a new direction' });
    expect(await roomOf(fork.id).idle()).toBe('waiting');
    expect((await messagesOf(fork.id, u.token)).map((m) => m.role)).toEqual(['user', 'assistant', 'user', 'assistant', 'user', 'assistant']);
    expect(await messagesOf(chat.id, u.token)).toEqual(before);
  });

  it('copies no deleted message (an edit dropped it)', async () => {
    const u = await makeUser();
    const chat = await startChat(u.token, 'first');
    await sdk(u.token).sendMessage(chat.id, { content: 'second' });
    await roomOf(chat.id).idle();
    const [first] = await messagesOf(chat.id, u.token);
    if (!first) throw new Error('no message');
    const dropped = (await messagesOf(chat.id, u.token)).at(-1);
    await sdk(u.token).editMessage(chat.id, first.id, { content: 'first, edited' });
    await roomOf(chat.id).idle();
    const live = await messagesOf(chat.id, u.token);
    const last = live.at(-1);
    if (!last || !dropped) throw new Error('no message');
    const fork = await sdk(u.token).forkChat(chat.id, { message_id: last.id });
    expect((await messagesOf(fork.id, u.token)).map((m) => m.content)).toEqual(live.map((m) => m.content));
    // A dropped message is no place to fork from.
    const r = await call('POST', `/api/v2/chats/${chat.id}/fork`, { token: u.token, body: { message_id: dropped.id } });
    expect(r.status).toBe(404);
    expect(ErrorBody.parse(r.body).message).toBe('This chat has no message with this id.');
  });

  it("answers 404 for another user's chat and for a message of another chat, 400 for a bad body, and stores nothing", async () => {
    const owner = await makeUser();
    const stranger = await makeUser();
    const chat = await startChat(owner.token, 'mine');
    const other = await startChat(owner.token, 'other');
    const [m] = await messagesOf(chat.id, owner.token);
    const [o] = await messagesOf(other.id, owner.token);
    if (!m || !o) throw new Error('no message');
    expect((await call('POST', `/api/v2/chats/${chat.id}/fork`, { token: stranger.token, body: { message_id: m.id } })).status).toBe(404);
    expect((await call('POST', `/api/v2/chats/${chat.id}/fork`, { token: owner.token, body: { message_id: o.id } })).status).toBe(404);
    const bad = await call('POST', `/api/v2/chats/${chat.id}/fork`, { token: owner.token, body: { message_id: 'x' } });
    expect(bad.status).toBe(400);
    expect(ErrorBody.parse(bad.body).validations?.map((v) => v.field)).toEqual(['message_id']);
    expect((await call('POST', `/api/v2/chats/${chat.id}/fork`, { token: owner.token, body: {} })).status).toBe(400);
    const db = testDb();
    try {
      const rows = await db.query('SELECT count(*)::int AS n FROM chats WHERE owner_id = ANY($1::uuid[])', [[owner.user.id, stranger.user.id]]);
      expect(rows.rows).toEqual([{ n: 2 }]);
    } finally {
      await db.close();
    }
  });
});
