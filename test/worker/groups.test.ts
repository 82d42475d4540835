/**
 * Groups: owners manage them and their members; a chat shared with a group opens to its members, and leaving the group
 * (or its deletion) ends that access at once: open streams close with 4403 within 1 s and the next read is 404.
 */
import { describe, expect, it } from 'vitest';
import { call, makeOwner, makeUser, openSockets, sdk, startChat, uniq, type TestUser } from './helpers';
import { StreamClient } from './stream-client';

/** A group with `member` in it, and a chat of `chatOwner` shared with the group. */
async function sharedWithGroup(admin: TestUser, chatOwner: TestUser, member: TestUser) {
  const group = await sdk(admin.token).createGroup({ name: `team-${uniq()}` });
  await sdk(admin.token).addGroupMember(group.id, member.user.id);
  const chat = await startChat(chatOwner.token, 'for the team');
  await sdk(chatOwner.token).updateChatAcl(chat.id, { groups: { [group.id]: 'viewer' } });
  return { group, chat };
}

describe('groups', () => {
  it('are managed by owners: create, rename, list, members, delete; members of the deployment get 403', async () => {
    const admin = await makeOwner();
    const member = await makeUser();
    const name = `eng-${uniq()}`;
    const g = await sdk(admin.token).createGroup({ name });
    expect(g).toEqual({ id: g.id, name, member_count: 0, created_at: g.created_at });
    expect((await call('POST', '/api/v2/groups', { token: admin.token, body: { name: name.toUpperCase() } })).status).toBe(409);
    expect((await call('POST', '/api/v2/groups', { token: admin.token, body: { name: '  ' } })).status).toBe(400);
    await sdk(admin.token).addGroupMember(g.id, member.user.id);
    await sdk(admin.token).addGroupMember(g.id, member.user.id);
    expect(await sdk(admin.token).groupMembers(g.id)).toEqual([{ user_id: member.user.id, username: member.user.username, email: member.user.email }]);
    const renamed = await sdk(admin.token).renameGroup(g.id, { name: `${name}-2` });
    expect(renamed).toEqual({ ...g, name: `${name}-2`, member_count: 1 });
    expect((await sdk(admin.token).groups()).filter((x) => x.id === g.id)).toEqual([renamed]);
    expect((await call('PUT', `/api/v2/groups/${g.id}/members/${crypto.randomUUID()}`, { token: admin.token })).status).toBe(404);
    expect((await call('PUT', `/api/v2/groups/${crypto.randomUUID()}/members/${member.user.id}`, { token: admin.token })).status).toBe(404);
    for (const [method, path] of [
      ['GET', '/api/v2/groups'],
      ['POST', '/api/v2/groups'],
      ['PATCH', `/api/v2/groups/${g.id}`],
      ['DELETE', `/api/v2/groups/${g.id}`],
      ['GET', `/api/v2/groups/${g.id}/members`],
      ['PUT', `/api/v2/groups/${g.id}/members/${member.user.id}`],
      ['DELETE', `/api/v2/groups/${g.id}/members/${member.user.id}`],
    ] as const) {
      expect([method, path, (await call(method, path, { token: member.token, body: method === 'POST' || method === 'PATCH' ? { name: 'x' } : undefined })).status]).toEqual([method, path, 403]);
    }
    await sdk(admin.token).removeGroupMember(g.id, member.user.id);
    expect(await sdk(admin.token).groupMembers(g.id)).toEqual([]);
    await sdk(admin.token).deleteGroup(g.id);
    expect((await call('DELETE', `/api/v2/groups/${g.id}`, { token: admin.token })).status).toBe(404);
    expect((await call('GET', `/api/v2/groups/${g.id}/members`, { token: admin.token })).status).toBe(404);
  });

  it('a chat shared with a group opens to its members; removal closes their streams with 4403 within 1 s, then 404', async () => {
    const admin = await makeOwner();
    const owner = await makeUser();
    const member = await makeUser();
    const outsider = await makeUser();
    const { group, chat } = await sharedWithGroup(admin, owner, member);
    expect(await sdk(owner.token).chatAcl(chat.id)).toEqual({ users: [], groups: [{ group_id: group.id, name: group.name, role: 'viewer' }] });
    expect(await sdk(member.token).getChat(chat.id)).toMatchObject({ id: chat.id, access: 'viewer' });
    expect((await sdk(member.token).listChats({ shared: 'true' })).map((c) => c.id)).toEqual([chat.id]);
    expect((await call('GET', `/api/v2/chats/${chat.id}`, { token: outsider.token })).status).toBe(404);
    expect((await call('PATCH', `/api/v2/chats/${chat.id}`, { token: member.token, body: { title: 'x' } })).status).toBe(403);

    const watching = await StreamClient.connected(chat.id, member.token);
    const owning = await StreamClient.connected(chat.id, owner.token);
    await sdk(admin.token).removeGroupMember(group.id, member.user.id);
    // Closed by the removal itself (see openSockets): only the owner's socket is still open.
    expect(await openSockets(chat.id)).toBe(1);
    await watching.waitClosed();
    expect(watching.closed?.code).toBe(4403);
    expect(owning.closed).toBeNull();
    expect((await call('GET', `/api/v2/chats/${chat.id}`, { token: member.token })).status).toBe(404);
    expect(await sdk(member.token).listChats({ shared: 'true' })).toEqual([]);

    // Back in the group: access again, at once (the cached groups were forgotten).
    await sdk(admin.token).addGroupMember(group.id, member.user.id);
    expect(await sdk(member.token).getChat(chat.id)).toMatchObject({ access: 'viewer' });
    owning.close();
  });

  it("deleting a group ends its members' access at once (4403 within 1 s, then 404)", async () => {
    const admin = await makeOwner();
    const owner = await makeUser();
    const member = await makeUser();
    const { group, chat } = await sharedWithGroup(admin, owner, member);
    const watching = await StreamClient.connected(chat.id, member.token);
    await sdk(admin.token).deleteGroup(group.id);
    expect(await openSockets(chat.id)).toBe(0);
    await watching.waitClosed();
    expect(watching.closed?.code).toBe(4403);
    expect((await call('GET', `/api/v2/chats/${chat.id}/messages`, { token: member.token })).status).toBe(404);
    expect(await sdk(owner.token).chatAcl(chat.id)).toEqual({ users: [], groups: [] });
  });
});
