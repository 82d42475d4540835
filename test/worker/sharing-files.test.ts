/**
 * The files of shared chats: a share link serves (without credentials) only the files its snapshot's live messages
 * use, with the headers of GET /chats/files/{id}; a viewer finds the shared chat's messages in search and reads its
 * files, and loses both the moment access ends.
 */
import { exports } from 'cloudflare:workers';
import { describe, expect, it } from 'vitest';
import { call, makeUser, messagesOf, roomOf, sdk, startChat, testDb, uniq } from './helpers';
import { download, PDF, PNG, sha256, TEXT, upload } from './file-fixtures';

const fileId = (body: unknown): string => {
  const id = (body as { id?: unknown }).id;
  if (typeof id !== 'string') throw new Error(`no file id in ${JSON.stringify(body)}`);
  return id;
};

/** GET /shared/{token}/files/{id} without credentials. */
async function sharedFile(token: string, id: string) {
  const res = await exports.default.fetch(`http://chatd.test/api/v2/shared/${token}/files/${id}`);
  return { status: res.status, headers: res.headers, bytes: new Uint8Array(await res.arrayBuffer()) };
}

/** A word no other test uses: letters only, so the search parser reads it as one plain word. */
const word = (): string => `w${uniq().replace(/./g, (ch) => String.fromCharCode(97 + (ch.charCodeAt(0) % 26)))}`;

describe('GET /shared/{token}/files/{file_id}', () => {
  it('serves a file of the snapshot without credentials, with the download headers; nothing else', async () => {
    const owner = await makeUser();
    const [png, pdf, later, unused] = [
      fileId((await upload(owner.token, PNG, 'image/png', 'dot.png')).body),
      fileId((await upload(owner.token, PDF, 'application/pdf', 'report.pdf')).body),
      fileId((await upload(owner.token, TEXT, 'text/plain', 'later.txt')).body),
      fileId((await upload(owner.token, TEXT, 'text/plain', 'unused.txt')).body),
    ];
    const chat = await startChat(owner.token, [{ type: 'text', text: 'look' }, { type: 'file', file_id: png }, { type: 'file', file_id: pdf }]);
    const link = await sdk(owner.token).createShareLink(chat.id, {});
    await sdk(owner.token).sendMessage(chat.id, { content: [{ type: 'text', text: 'and this' }, { type: 'file', file_id: later }] });
    await roomOf(chat.id).idle();
    // Another chat's file, even of the same owner, is not the link's.
    const other = fileId((await upload(owner.token, PNG, 'image/png', 'other.png')).body);
    await startChat(owner.token, [{ type: 'file', file_id: other }]);

    const image = await sharedFile(link.token, png);
    expect(image.status).toBe(200);
    expect(image.bytes).toEqual(PNG);
    expect(await sha256(image.bytes)).toBe(await sha256(PNG));
    expect(Object.fromEntries(['content-type', 'content-length', 'x-content-type-options', 'content-disposition', 'cache-control', 'content-security-policy', 'etag'].map((h) => [h, image.headers.get(h)]))).toEqual({
      'content-type': 'image/png',
      'content-length': String(PNG.length),
      'x-content-type-options': 'nosniff',
      'content-disposition': `inline; filename="dot.png"; filename*=UTF-8''dot.png`,
      'cache-control': 'public, max-age=60',
      'content-security-policy': "default-src 'none'; sandbox",
      etag: `"${await sha256(PNG)}"`,
    });
    // The same headers as the owner's own download, but the link's cache lifetime.
    const own = await download(owner.token, png);
    for (const h of ['content-type', 'content-length', 'x-content-type-options', 'content-disposition', 'content-security-policy', 'etag']) {
      expect([h, image.headers.get(h)]).toEqual([h, own.headers.get(h)]);
    }
    const doc = await sharedFile(link.token, pdf);
    expect([doc.status, doc.headers.get('content-disposition')]).toEqual([200, `attachment; filename="report.pdf"; filename*=UTF-8''report.pdf`]);
    expect(doc.bytes).toEqual(PDF);

    for (const id of [later, unused, other, crypto.randomUUID()]) {
      const r = await sharedFile(link.token, id);
      expect([id, r.status, r.headers.get('cache-control')]).toEqual([id, 404, 'no-store']);
    }
    expect((await sharedFile('A'.repeat(43), png)).status).toBe(404);
    expect((await sharedFile('not-a-token', png)).status).toBe(404);
    expect((await call('GET', `/api/v2/shared/${link.token}/files/not-a-uuid`)).status).toBe(400);

    // Expired, then revoked: 404.
    const db = testDb();
    try {
      await db.query("UPDATE chat_share_links SET expires_at = now() - interval '1 second' WHERE id = $1", [link.id]);
      expect((await sharedFile(link.token, png)).status).toBe(404);
      await db.query('UPDATE chat_share_links SET expires_at = NULL WHERE id = $1', [link.id]);
      expect((await sharedFile(link.token, png)).status).toBe(200);
    } finally {
      await db.close();
    }
    await sdk(owner.token).deleteShareLink(chat.id, link.id);
    expect((await sharedFile(link.token, png)).status).toBe(404);
  });

  it('stops serving a file whose only message an edit removed', async () => {
    const owner = await makeUser();
    const png = fileId((await upload(owner.token, PNG, 'image/png', 'dot.png')).body);
    const chat = await startChat(owner.token, 'first');
    await sdk(owner.token).sendMessage(chat.id, { content: [{ type: 'text', text: 'see' }, { type: 'file', file_id: png }] });
    await roomOf(chat.id).idle();
    const link = await sdk(owner.token).createShareLink(chat.id, {});
    expect((await sharedFile(link.token, png)).status).toBe(200);
    const withFile = (await messagesOf(chat.id, owner.token)).find((m) => m.content.some((p) => p.type === 'file'));
    if (!withFile) throw new Error('no message with the file');
    const edit = await call('PATCH', `/api/v2/chats/${chat.id}/messages/${withFile.id}`, { token: owner.token, body: { content: 'no file now' } });
    expect(edit.status).toBe(200);
    await roomOf(chat.id).idle();
    expect((await sharedFile(link.token, png)).status).toBe(404);
  });
});

describe('a viewer of a shared chat', () => {
  it('finds its messages in search and reads its files, and loses both when access ends', async () => {
    const owner = await makeUser();
    const viewer = await makeUser();
    const w = word();
    const png = fileId((await upload(owner.token, PNG, 'image/png', 'dot.png')).body);
    const chat = await startChat(owner.token, [{ type: 'text', text: `the ${w} diagram` }, { type: 'file', file_id: png }]);
    await roomOf(chat.id).idle();
    // The mock answers `Echo: <the user's text>`: both messages hold the word.
    const [first, answer] = await messagesOf(chat.id, owner.token);

    // Before any grant: nothing.
    expect((await sdk(viewer.token).searchChats({ q: w })).results).toEqual([]);
    expect((await download(viewer.token, png)).status).toBe(404);
    expect((await call('GET', `/api/v2/chats/${chat.id}/files`, { token: viewer.token })).status).toBe(404);

    await sdk(owner.token).updateChatAcl(chat.id, { users: { [viewer.user.id]: 'viewer' } });
    const found = (await sdk(viewer.token).searchChats({ q: w })).results;
    expect(found.map((r) => [r.chat_id, r.message_id, r.role, r.snippet])).toEqual([
      [chat.id, answer?.id, 'assistant', `Echo: the <mark>${w}</mark> diagram`],
      [chat.id, first?.id, 'user', `the <mark>${w}</mark> diagram`],
    ]);
    const d = await download(viewer.token, png);
    expect([d.status, d.bytes]).toEqual([200, PNG]);
    const files = await sdk(viewer.token).chatFiles(chat.id);
    expect(files.files.map((f) => [f.id, f.name])).toEqual([[png, 'dot.png']]);

    await sdk(owner.token).updateChatAcl(chat.id, { users: { [viewer.user.id]: null } });
    expect((await sdk(viewer.token).searchChats({ q: w })).results).toEqual([]);
    expect((await download(viewer.token, png)).status).toBe(404);
    expect((await call('GET', `/api/v2/chats/${chat.id}/files`, { token: viewer.token })).status).toBe(404);
    // The owner keeps both.
    expect((await sdk(owner.token).searchChats({ q: w })).results.map((r) => r.message_id)).toEqual([answer?.id, first?.id]);
    expect((await download(owner.token, png)).status).toBe(200);
  });
});
