/**
 * Size and shape limits (API.md "Limits"): bodies at most 1 MiB (413, checked while reading, with or without a
 * Content-Length), at most 100 parts per message, labels and titles bounded, and JSON that Postgres could not store
 * (NUL, unpaired surrogates) or that nests absurdly deep refused with 400 instead of failing as 500.
 */
import { exports } from 'cloudflare:workers';
import { describe, expect, it } from 'vitest';
import { MAX_BODY_BYTES } from '../../functions/lib/body-guard';
import { Chat } from '../../functions/core/shapes/chat';
import { call, ErrorBody, makeUser, roomOf, sdk, startChat, testDb } from './helpers';

/** The contract's number (API.md "Limits"). */
const MAX_MESSAGE_PARTS = 100;
const TOO_LARGE = { message: 'The request body is larger than 1 MiB (1048576 bytes).' };

/** A request whose body is a stream: no Content-Length, sent chunked. */
async function streamed(path: string, token: string, chunks: string[]) {
  const enc = new TextEncoder();
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      for (const c of chunks) controller.enqueue(enc.encode(c));
      controller.close();
    },
  });
  const res = await exports.default.fetch(`http://chatd.test${path}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body,
  });
  return { status: res.status, body: await res.json() };
}

async function chatsOf(userId: string): Promise<number> {
  const db = testDb();
  try {
    const r = await db.query('SELECT count(*)::int AS n FROM chats WHERE owner_id = $1', [userId]);
    return (r.rows[0] as { n: number }).n;
  } finally {
    await db.close();
  }
}

const parts = (n: number, text = 'x') => Array.from({ length: n }, () => ({ type: 'text' as const, text }));

describe('request bodies', () => {
  it('over 1 MiB with a Content-Length: 413 before anything else, even unauthenticated', async () => {
    const u = await makeUser();
    const big = JSON.stringify({ content: 'x'.repeat(5 * 1024 * 1024) });
    for (const token of [u.token, undefined]) {
      const r = await call('POST', '/api/v2/chats', { token, rawBody: big, headers: { 'content-type': 'application/json' } });
      expect(r.status).toBe(413);
      expect(ErrorBody.parse(r.body)).toEqual(TOO_LARGE);
    }
    expect(await chatsOf(u.user.id)).toBe(0);
  });

  it('over 1 MiB streamed without a Content-Length: 413', async () => {
    const u = await makeUser();
    const chunk = 'x'.repeat(64 * 1024);
    const r = await streamed('/api/v2/chats', u.token, ['{"content":"', ...Array.from({ length: 20 }, () => chunk), '"}']);
    expect(r.status).toBe(413);
    expect(r.body).toEqual(TOO_LARGE);
    expect(await chatsOf(u.user.id)).toBe(0);
  });

  it('a streamed body within the limit reaches the route', async () => {
    const u = await makeUser();
    const r = await streamed('/api/v2/chats', u.token, ['{"content":', '"hello ', 'stream"}']);
    expect(r.status).toBe(201);
    await roomOf(Chat.parse(r.body).id).idle();
  });

  it('exactly 1 MiB is read and validated (400), one byte more is 413', async () => {
    const u = await makeUser();
    const frame = (n: number) => `{"content":"${'x'.repeat(n - '{"content":""}'.length)}"}`;
    const at = await call('POST', '/api/v2/chats', { token: u.token, rawBody: frame(MAX_BODY_BYTES), headers: { 'content-type': 'application/json' } });
    expect(at.status).toBe(400);
    expect(ErrorBody.parse(at.body).validations?.[0]).toEqual({ field: 'content', detail: 'must be at most 200000 characters' });
    const over = await call('POST', '/api/v2/chats', { token: u.token, rawBody: frame(MAX_BODY_BYTES + 1), headers: { 'content-type': 'application/json' } });
    expect(over.status).toBe(413);
  });
});

describe('message content', () => {
  it(`at most ${MAX_MESSAGE_PARTS} parts, empty ones included`, async () => {
    const u = await makeUser();
    for (const content of [parts(MAX_MESSAGE_PARTS + 1), parts(10_000, '')]) {
      const r = await call('POST', '/api/v2/chats', { token: u.token, body: { content } });
      expect(r.status).toBe(400);
      expect(ErrorBody.parse(r.body).validations).toContainEqual({ field: 'content', detail: `must have at most ${MAX_MESSAGE_PARTS} parts` });
    }
    expect(await chatsOf(u.user.id)).toBe(0);
    const ok = await sdk(u.token).createChat({ content: parts(MAX_MESSAGE_PARTS) });
    await roomOf(ok.id).idle();
  });

  it('the same holds for messages, edits and what gets queued', async () => {
    const u = await makeUser();
    const chat = await startChat(u.token, 'hello');
    const too = parts(MAX_MESSAGE_PARTS + 1);
    for (const busy of ['queue', 'interrupt']) {
      const r = await call('POST', `/api/v2/chats/${chat.id}/messages`, { token: u.token, body: { content: too, busy_behavior: busy } });
      expect(r.status).toBe(400);
    }
    const first = (await call('GET', `/api/v2/chats/${chat.id}/messages`, { token: u.token })).body as { messages: { id: number; role: string }[] };
    const userMessage = first.messages.find((m) => m.role === 'user');
    const edit = await call('PATCH', `/api/v2/chats/${chat.id}/messages/${userMessage?.id ?? 0}`, { token: u.token, body: { content: too } });
    expect(edit.status).toBe(400);
  });

  it('text Postgres cannot store is a 400 naming the field, not a 500', async () => {
    const u = await makeUser();
    const cases: [unknown, string][] = [
      [{ content: 'nul \u0000 here' }, 'content'],
      [{ content: [{ type: 'text', text: 'ok' }, { type: 'text', text: 'lone \ud800' }] }, 'content.1.text'],
      [{ content: 'hi', title: 'a\u0000b' }, 'title'],
      [{ content: 'hi', labels: { 'k\u0000': 'v' } }, 'labels.(key)'],
      [{ content: 'hi', labels: { k: '\udc00' } }, 'labels.k'],
    ];
    for (const [body, field] of cases) {
      const r = await call('POST', '/api/v2/chats', { token: u.token, body });
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(ErrorBody.parse(r.body).validations).toEqual([{ field, detail: 'must not contain NUL characters or unpaired surrogates' }]);
    }
    expect(await chatsOf(u.user.id)).toBe(0);
  });

  it('JSON nested deeper than 128 levels is a 400', async () => {
    const u = await makeUser();
    const deep = `{"content":"hi","labels":${'['.repeat(5000)}${']'.repeat(5000)}}`;
    const r = await call('POST', '/api/v2/chats', { token: u.token, rawBody: deep, headers: { 'content-type': 'application/json' } });
    expect(r.status).toBe(400);
    expect(ErrorBody.parse(r.body).validations?.[0]?.detail).toBe('must not nest deeper than 128 levels');
  });
});

describe('labels and titles', () => {
  const labels = (n: number) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`k${i}`, 'v']));

  it.each([
    ['51 labels', { labels: labels(51) }, 'labels'],
    ['a 65-character key', { labels: { ['k'.repeat(65)]: 'v' } }, 'labels.kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk'],
    ['a 257-character value', { labels: { k: 'v'.repeat(257) } }, 'labels.k'],
    ['a 257-character title', { title: 't'.repeat(257) }, 'title'],
  ])('%s: 400 on create and on update', async (_name, extra, field) => {
    const u = await makeUser();
    const r = await call('POST', '/api/v2/chats', { token: u.token, body: { content: 'hi', ...extra } });
    expect(r.status).toBe(400);
    expect(ErrorBody.parse(r.body).validations?.[0]?.field).toBe(field);
    expect(await chatsOf(u.user.id)).toBe(0);
    const chat = await startChat(u.token, 'hi', { labels: labels(50), title: 't'.repeat(256) });
    const p = await call('PATCH', `/api/v2/chats/${chat.id}`, { token: u.token, body: extra });
    expect(p.status).toBe(400);
    const after = await sdk(u.token).getChat(chat.id);
    expect(after.title).toBe('t'.repeat(256));
    expect(Object.keys(after.labels)).toHaveLength(50);
  });
});
