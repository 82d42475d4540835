import { env } from 'cloudflare:workers';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { ErrorBody, makeUser, sdk, startChat, testDb } from './helpers';
import { download, GIF, JPEG, PDF, PNG, sha256, TEXT, upload, WEBP } from './file-fixtures';

const File = z.object({ id: z.uuid(), name: z.string(), media_type: z.string(), size: z.number(), sha256: z.string(), created_at: z.string() }).strict();
const MiB = 1024 * 1024;

async function rowCount(ownerId: string): Promise<number> {
  const db = testDb();
  try {
    const { rows } = await db.query('SELECT count(*)::int AS n FROM chat_files WHERE owner_id = $1', [ownerId]);
    return z.array(z.object({ n: z.number() })).parse(rows)[0]?.n ?? -1;
  } finally {
    await db.close();
  }
}

describe('POST /chats/files', () => {
  const accepted: [string, Uint8Array, string][] = [
    ['image/png', PNG, 'dot.png'],
    ['image/jpeg', JPEG, 'photo.jpg'],
    ['image/gif', GIF, 'anim.gif'],
    ['image/webp', WEBP, 'pic.webp'],
    ['application/pdf', PDF, 'report.pdf'],
    ['text/plain', TEXT, 'notes.txt'],
    ['text/markdown', new TextEncoder().encode('# Title\n'), 'readme.md'],
    ['text/csv', new TextEncoder().encode('a,b\n1,2\n'), 'data.csv'],
    ['application/json', new TextEncoder().encode('{"a":1}'), 'data.json'],
  ];
  it.each(accepted)('stores %s and gives the bytes back exactly, with safe headers', async (type, bytes, name) => {
    const u = await makeUser();
    const r = await upload(u.token, bytes, type, name);
    expect(r.status).toBe(201);
    const file = File.parse(r.body);
    expect(file).toMatchObject({ name, media_type: type, size: bytes.length, sha256: await sha256(bytes) });
    const d = await download(u.token, file.id);
    expect(d.status).toBe(200);
    expect(d.bytes).toEqual(bytes);
    expect(d.headers.get('content-type')).toBe(type);
    expect(d.headers.get('x-content-type-options')).toBe('nosniff');
    expect(d.headers.get('cache-control')).toBe('private, max-age=3600');
    const kind = type.startsWith('image/') ? 'inline' : 'attachment';
    expect(d.headers.get('content-disposition')).toBe(`${kind}; filename="${name}"; filename*=UTF-8''${name}`);
  });

  it('accepts a multipart form with one field "file"', async () => {
    const u = await makeUser();
    const form = new FormData();
    form.set('file', new Blob([PNG], { type: 'image/png' }), 'pasted.png');
    const r = await sdk(u.token).raw.POST('/api/v2/chats/files', { body: form as never, bodySerializer: (b: unknown) => b as FormData });
    expect(r.response.status).toBe(201);
    expect(File.parse(r.data)).toMatchObject({ name: 'pasted.png', media_type: 'image/png', size: PNG.length });
  });

  it('sanitizes names: no path, no control characters, at most 255 characters', async () => {
    const u = await makeUser();
    const r1 = await upload(u.token, TEXT, 'text/plain', '../../etc/pa\u0007ss\u202ewd.txt');
    expect(File.parse(r1.body).name).toBe('passwd.txt');
    const r2 = await upload(u.token, TEXT, 'text/plain', `${'x'.repeat(300)}.txt`);
    expect(File.parse(r2.body).name).toBe(`${'x'.repeat(251)}.txt`);
  });

  const refused: [string, Uint8Array, string][] = [
    ['a PNG claimed as JPEG', PNG, 'image/jpeg'],
    ['a PDF claimed as text', PDF, 'text/plain'],
    ['an SVG', new TextEncoder().encode('<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'), 'image/svg+xml'],
    ['HTML', new TextEncoder().encode('<!doctype html><script>alert(1)</script>'), 'text/html'],
    ['an unknown binary claimed as PNG', new Uint8Array([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]), 'image/png'],
    ['an unknown binary claimed as text', new Uint8Array([0xff, 0xfe, 0xc3, 0x28, 0xa0, 0xa1]), 'text/plain'],
    ['an unknown binary as octet-stream', new Uint8Array([0, 1, 2, 3]), 'application/octet-stream'],
  ];
  it.each(refused)('refuses %s with 415 and stores nothing', async (_what, bytes, type) => {
    const u = await makeUser();
    const r = await upload(u.token, bytes, type, 'x');
    expect(r.status).toBe(415);
    expect(ErrorBody.parse(r.body).message.length).toBeGreaterThan(10);
    expect(await rowCount(u.user.id)).toBe(0);
  });

  it('refuses invalid UTF-8 past the first bytes (415) and keeps nothing', async () => {
    const u = await makeUser();
    const bytes = new Uint8Array(20_000).fill(0x61);
    bytes[15_000] = 0xff;
    const r = await upload(u.token, bytes, 'text/csv', 'bad.csv');
    expect(r.status).toBe(415);
    expect(ErrorBody.parse(r.body).message).toBe("The file's bytes are not text/csv: they are not valid UTF-8.");
    expect(await rowCount(u.user.id)).toBe(0);
  });

  it('takes exactly 10 MiB and refuses 10 MiB + 1 (413)', async () => {
    const u = await makeUser();
    const big = new Uint8Array(10 * MiB).fill(0x61);
    expect((await upload(u.token, big, 'text/plain', 'max.txt')).status).toBe(201);
    const over = new Uint8Array(10 * MiB + 1).fill(0x61);
    const r = await upload(u.token, over, 'text/plain', 'over.txt');
    expect(r.status).toBe(413);
    expect(ErrorBody.parse(r.body).message).toBe('The file is larger than 10 MiB (10485760 bytes).');
    expect(await rowCount(u.user.id)).toBe(1);
  });

  it('refuses a chunked body past 10 MiB at the first byte over (413)', async () => {
    const u = await makeUser();
    const chunk = new Uint8Array(MiB).fill(0x62);
    let sent = 0;
    const body = new ReadableStream<Uint8Array>({
      pull(c) {
        sent += 1;
        if (sent > 11) c.close();
        else c.enqueue(chunk);
      },
    });
    const res = await fetchUpload(u.token, body, 'text/plain');
    expect(res.status).toBe(413);
    expect(await rowCount(u.user.id)).toBe(0);
  });

  it('refuses an upload past the quota (413) and counts what is stored', async () => {
    const u = await makeUser();
    const db = testDb();
    try {
      await db.query('INSERT INTO chat_file_usage (owner_id, bytes) VALUES ($1, $2)', [u.user.id, Number(env.FILE_QUOTA_BYTES) - 100]);
    } finally {
      await db.close();
    }
    expect((await upload(u.token, PNG, 'image/png', 'fits.png')).status).toBe(201);
    const r = await upload(u.token, PNG, 'image/png', 'over.png');
    expect(r.status).toBe(413);
    expect(ErrorBody.parse(r.body).message).toMatch(/^Your files would take more than your storage quota \(1024 MiB\)/);
    expect(await rowCount(u.user.id)).toBe(1);
  });

  it('needs a name and a body', async () => {
    const u = await makeUser();
    const res = await fetchUpload(u.token, PNG, 'image/png', '');
    expect(res.status).toBe(400);
  });
});

async function fetchUpload(token: string, body: BodyInit, type: string, name = 'x.txt'): Promise<Response> {
  const { exports } = await import('cloudflare:workers');
  const res = await exports.default.fetch(`http://chatd.test/api/v2/chats/files${name ? `?name=${name}` : ''}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': type },
    body,
  });
  await res.arrayBuffer();
  return res;
}

describe('reading files', () => {
  it('gives another user 404 for a file and for a chat\'s files', async () => {
    const a = await makeUser();
    const b = await makeUser();
    const file = File.parse((await upload(a.token, PNG, 'image/png', 'a.png')).body);
    const chat = await startChat(a.token, [{ type: 'text', text: 'look' }, { type: 'file', file_id: file.id }]);
    expect((await download(b.token, file.id)).status).toBe(404);
    expect((await download(b.token, crypto.randomUUID())).status).toBe(404);
    await expect(sdk(b.token).chatFiles(chat.id)).rejects.toMatchObject({ status: 404 });
    const files = await sdk(a.token).chatFiles(chat.id);
    expect(files.files.map((f) => f.id)).toEqual([file.id]);
  });

  it("a file part naming someone else's file or no file → 400 with validations, and nothing is stored", async () => {
    const a = await makeUser();
    const b = await makeUser();
    const theirs = File.parse((await upload(b.token, PNG, 'image/png', 'b.png')).body);
    const chat = await startChat(a.token, 'hello');
    const before = (await sdk(a.token).listMessages(chat.id)).messages.length;
    for (const id of [theirs.id, crypto.randomUUID()]) {
      const e: unknown = await sdk(a.token)
        .sendMessage(chat.id, { content: [{ type: 'text', text: 'see' }, { type: 'file', file_id: id }] })
        .catch((x: unknown) => x);
      expect(e).toMatchObject({ status: 400, validations: [{ field: 'content.1.file_id', detail: 'no file of yours has this id' }] });
    }
    expect((await sdk(a.token).listMessages(chat.id)).messages.length).toBe(before);
  });

  it('stores a file part with its name, type and size, and refuses more than 10 per message', async () => {
    const u = await makeUser();
    const file = File.parse((await upload(u.token, PDF, 'application/pdf', 'r.pdf')).body);
    const chat = await startChat(u.token, [{ type: 'file', file_id: file.id }]);
    const [first] = (await sdk(u.token).listMessages(chat.id)).messages.filter((m) => m.role === 'user');
    expect(first?.content).toEqual([{ type: 'file', file_id: file.id, name: 'r.pdf', media_type: 'application/pdf', size: PDF.length }]);
    const eleven = Array.from({ length: 11 }, () => ({ type: 'file' as const, file_id: file.id }));
    await expect(sdk(u.token).sendMessage(chat.id, { content: eleven })).rejects.toMatchObject({ status: 400 });
  });
});
