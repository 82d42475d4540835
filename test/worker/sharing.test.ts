/**
 * Chats shared with viewers: a viewer reads the chat and watches its stream live (the same frames as the owner), every
 * change is 403 for them and 404 for anyone else, access ends at once (open streams close with 4403 within 1 s), and
 * share links serve a snapshot that excludes later messages, until revoked or expired.
 */
import { describe, expect, it } from 'vitest';
import { call, makeUser, messagesOf, mockGate, openSockets, roomOf, sdk, startChat, testDb, type TestUser } from './helpers';
import { StreamClient } from './stream-client';

const VIEWER_403 = 'This chat is shared with you to read: only its owner can change it.';

async function shared(owner: TestUser, viewer: TestUser, title = 'shared chat') {
  const chat = await startChat(owner.token, title);
  const acl = await sdk(owner.token).updateChatAcl(chat.id, { users: { [viewer.user.id]: 'viewer' } });
  expect(acl).toEqual({ users: [{ user_id: viewer.user.id, username: viewer.user.username, role: 'viewer' }], groups: [] });
  return chat;
}

describe('a chat shared with a viewer', () => {
  it('reads the chat, its messages and the shared list, and watches a turn live with the same frames as the owner', async () => {
    const owner = await makeUser();
    const viewer = await makeUser();
    const chat = await shared(owner, viewer);
    expect(await sdk(viewer.token).getChat(chat.id)).toMatchObject({ id: chat.id, owner_id: owner.user.id, access: 'viewer' });
    expect(await sdk(owner.token).getChat(chat.id)).toMatchObject({ id: chat.id, access: 'owner' });
    expect(await messagesOf(chat.id, viewer.token)).toEqual(await messagesOf(chat.id, owner.token));
    const list = await sdk(viewer.token).listChats({ shared: 'true' });
    expect(list.map((c) => [c.id, c.access])).toEqual([[chat.id, 'viewer']]);
    expect((await sdk(viewer.token).listChats()).map((c) => c.id)).toEqual([]);
    expect((await sdk(owner.token).listChats()).map((c) => [c.id, c.access])).toEqual([[chat.id, 'owner']]);

    const gate = mockGate();
    const watching = await StreamClient.connected(chat.id, viewer.token);
    const owning = await StreamClient.connected(chat.id, owner.token);
    await sdk(owner.token).sendMessage(chat.id, { content: `go ${gate.directive(2)}` });
    await gate.waiting();
    await watching.waitFor('parts before the gate', (c) => c.events.some((e) => e.type === 'message_part'));
    await gate.open();
    await watching.waitIdle();
    await owning.waitIdle();
    const all = await messagesOf(chat.id, owner.token);
    expect(watching.messages()).toEqual(all);
    expect(owning.messages()).toEqual(all);
    watching.close();
    owning.close();
  });

  it('refuses every change with 403 to the viewer and 404 to a stranger, changing nothing', async () => {
    const owner = await makeUser();
    const viewer = await makeUser();
    const stranger = await makeUser();
    const chat = await shared(owner, viewer);
    const [first] = await messagesOf(chat.id, owner.token);
    const base = `/api/v2/chats/${chat.id}`;
    const writes: [string, string, unknown][] = [
      ['POST', `${base}/messages`, { content: 'hi' }],
      ['PATCH', `${base}/messages/${first?.id ?? 1}`, { content: 'edit' }],
      ['POST', `${base}/interrupt`, undefined],
      ['PATCH', base, { title: 'mine now' }],
      ['DELETE', base, undefined],
      ['PATCH', `${base}/acl`, { users: { [stranger.user.id]: 'viewer' } }],
      ['GET', `${base}/acl`, undefined],
      ['POST', `${base}/share-links`, {}],
      ['GET', `${base}/share-links`, undefined],
      ['DELETE', `${base}/share-links/${crypto.randomUUID()}`, undefined],
    ];
    for (const [method, path, body] of writes) {
      const v = await call(method, path, { token: viewer.token, body });
      expect([`${method} ${path}`, v.status, v.body]).toEqual([`${method} ${path}`, 403, { message: VIEWER_403 }]);
      const s = await call(method, path, { token: stranger.token, body });
      expect([`${method} ${path}`, s.status]).toEqual([`${method} ${path}`, 404]);
    }
    expect((await call('GET', base, { token: stranger.token })).status).toBe(404);
    expect(await sdk(owner.token).getChat(chat.id)).toMatchObject({ title: chat.title, archived: false });
    expect(await messagesOf(chat.id, owner.token)).toHaveLength(2);
    expect(await sdk(owner.token).chatAcl(chat.id)).toEqual({ users: [{ user_id: viewer.user.id, username: viewer.user.username, role: 'viewer' }], groups: [] });
  });

  it('answers 400 with validations for unknown ids (and the owner), and changes nothing', async () => {
    const owner = await makeUser();
    const viewer = await makeUser();
    const chat = await startChat(owner.token, 'acl');
    const ghost = crypto.randomUUID();
    const group = crypto.randomUUID();
    const r = await call('PATCH', `/api/v2/chats/${chat.id}/acl`, {
      token: owner.token,
      body: { users: { [viewer.user.id]: 'viewer', [ghost]: 'viewer', [owner.user.id]: 'viewer' }, groups: { [group]: null } },
    });
    expect(r.status).toBe(400);
    expect(r.body).toEqual({
      message: 'Unknown users or groups.',
      validations: [
        { field: `users.${ghost}`, detail: 'no user has this id' },
        { field: `users.${owner.user.id}`, detail: "is the chat's owner" },
        { field: `groups.${group}`, detail: 'no group has this id' },
      ],
    });
    expect(await sdk(owner.token).chatAcl(chat.id)).toEqual({ users: [], groups: [] });
    const bad = await call('PATCH', `/api/v2/chats/${chat.id}/acl`, { token: owner.token, body: { users: { x: 'owner' } } });
    expect(bad.status).toBe(400);
  });

  it('closes the viewer streams with 4403 within 1 s when the grant is revoked; their next read is 404; the owner stays', async () => {
    const owner = await makeUser();
    const viewer = await makeUser();
    const chat = await shared(owner, viewer);
    const watching = await StreamClient.connected(chat.id, viewer.token);
    const owning = await StreamClient.connected(chat.id, owner.token);
    await sdk(owner.token).updateChatAcl(chat.id, { users: { [viewer.user.id]: null } });
    // Closed by the ACL change itself (see openSockets): only the owner's socket is still open.
    expect(await openSockets(chat.id)).toBe(1);
    await watching.waitClosed();
    expect(watching.closed?.code).toBe(4403);
    expect(owning.closed).toBeNull();
    expect((await call('GET', `/api/v2/chats/${chat.id}`, { token: viewer.token })).status).toBe(404);
    expect((await call('GET', `/api/v2/chats/${chat.id}/messages`, { token: viewer.token })).status).toBe(404);
    expect(await StreamClient.open(chat.id, viewer.token)).toMatchObject({ status: 404 });
    expect(await sdk(viewer.token).listChats({ shared: 'true' })).toEqual([]);
    owning.close();
  });
});

describe('share links', () => {
  it('serve a snapshot up to the newest message when made, with nothing of the owner but the username', async () => {
    const owner = await makeUser();
    const chat = await startChat(owner.token, 'linked');
    const before = await messagesOf(chat.id, owner.token);
    const link = await sdk(owner.token).createShareLink(chat.id, {});
    expect(link.token).toMatch(/^[A-Za-z0-9]{43}$/);
    expect(link.url).toBe(`http://chatd.test/s/${link.token}`);
    expect(link.expires_at).toBeNull();
    expect(await sdk(owner.token).shareLinks(chat.id)).toEqual([{ id: link.id, expires_at: null, created_at: link.created_at }]);
    // Stored as a hash only.
    const db = testDb();
    const stored = await db.query('SELECT hashed_token FROM chat_share_links WHERE id = $1', [link.id]);
    expect(JSON.stringify(stored.rows)).not.toContain(link.token);

    await sdk(owner.token).sendMessage(chat.id, { content: 'after the link' });
    await roomOf(chat.id).idle();
    expect(await messagesOf(chat.id, owner.token)).toHaveLength(4);

    const r = await call('GET', `/api/v2/shared/${link.token}`);
    expect(r.status).toBe(200);
    expect(r.headers.get('cache-control')).toBe('public, max-age=60');
    expect(r.body).toEqual({ chat: { title: chat.title, created_at: chat.created_at, owner_username: owner.user.username }, messages: before });
    expect(r.text).not.toContain(owner.user.email);
    expect(r.text).not.toContain(owner.user.id);

    // Revoked: 404 from then on.
    await sdk(owner.token).deleteShareLink(chat.id, link.id);
    const gone = await call('GET', `/api/v2/shared/${link.token}`);
    expect([gone.status, gone.headers.get('cache-control')]).toEqual([404, 'no-store']);
    expect(await sdk(owner.token).shareLinks(chat.id)).toEqual([]);
    expect((await call('DELETE', `/api/v2/chats/${chat.id}/share-links/${link.id}`, { token: owner.token })).status).toBe(404);
    await db.close();
  });

  it('expire, and answer 404 for unknown or malformed tokens', async () => {
    const owner = await makeUser();
    const chat = await startChat(owner.token, 'short-lived');
    const link = await sdk(owner.token).createShareLink(chat.id, { expires_in_seconds: 3600 });
    expect(Date.parse(link.expires_at ?? '') - Date.parse(link.created_at)).toBeGreaterThan(3_590_000);
    const ok = await call('GET', `/api/v2/shared/${link.token}`);
    expect(ok.status).toBe(200);
    expect(ok.headers.get('cache-control')).toBe('public, max-age=60');
    const db = testDb();
    await db.query("UPDATE chat_share_links SET expires_at = now() - interval '1 second' WHERE id = $1", [link.id]);
    await db.close();
    expect((await call('GET', `/api/v2/shared/${link.token}`)).status).toBe(404);
    expect((await call('GET', `/api/v2/shared/${'A'.repeat(43)}`)).status).toBe(404);
    expect((await call('GET', '/api/v2/shared/not-a-token')).status).toBe(404);
    const bad = await call('POST', `/api/v2/chats/${chat.id}/share-links`, { token: owner.token, body: { expires_in_seconds: 0 } });
    expect(bad.status).toBe(400);
  });
});
