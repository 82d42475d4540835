/**
 * The SDK against the real Worker. Typed calls: one ChatdError for every failure, the paging iterators, and the
 * automatic Idempotency-Key that makes retries after a lost answer or a 503 safe. ChatStream: its state (messages,
 * status, queue, partial), full_refresh after an edit, the close codes that end it, the ping the server answers, and
 * the ticket a browser opens it with. The resume rules under many dropped sockets: sdk-resume.test.ts.
 */
import { runInDurableObject } from 'cloudflare:test';
import { ChatdError, fetchTransport, textOf, type StreamSocket, type StreamTransport } from '@chatd-edge/sdk';
import { describe, expect, it } from 'vitest';
import type { ChatRoom } from '../../durable-objects/chat-room';
import { freshWorld, makeOwner, makeUser, mockGate, roomOf, sdk, startChat, workerFetch } from './helpers';

const quick = { pingIntervalMs: 0, reconnect: { baseMs: 1, maxMs: 5 } };
const within = { timeoutMs: 10_000 };

/** Closes the chat's sockets from the server's side, with `code`. */
async function serverCloses(chatId: string, code: number, reason = 'test'): Promise<number> {
  return await runInDurableObject(roomOf(chatId), (_room: ChatRoom, state) => {
    const sockets = state.getWebSockets();
    for (const ws of sockets) ws.close(code, reason);
    return sockets.length;
  });
}

describe('ChatStream: state', () => {
  it('follows a chat: messages, status, queue and the partial turn; the iterator yields each event once', async () => {
    const u = await makeUser();
    const c = sdk(u.token);
    const chat = await startChat(u.token, 'first');
    const s = c.stream(chat.id, quick);
    const events: string[] = [];
    const iterating = (async () => {
      for await (const e of s) events.push(e.type);
    })();
    await s.until((x) => x.messages.length === 2 && x.status?.status === 'waiting', within);

    const gate = mockGate();
    await c.sendMessage(chat.id, { content: `held [[mock chunks=10]] ${gate.directive(4)}` });
    await gate.waiting(1);
    await s.until((x) => x.partial?.parts.length === 4, within);
    expect(s.status?.status).toBe('running');
    const queued = await c.sendMessage(chat.id, { content: 'next' });
    expect('queued_message' in queued).toBe(true);
    await s.until((x) => x.queue.length === 1, within);
    await gate.open();
    await s.until((x) => x.messages.length === 6 && x.status?.status === 'waiting' && x.queue.length === 0, within);
    expect(s.partial).toBeNull();
    const server = (await c.listMessages(chat.id)).messages;
    expect(s.messages).toEqual(server);
    await s.close();
    await iterating;
    expect(events.filter((t) => t === 'message')).toHaveLength(6);
    expect(s.resumeCounts).toMatchObject({ duplicateMessages: 0, restarts: 0, gaps: 0 });
  });

  it('applies full_refresh after an edit: the history is replaced and the stream resumes after it', async () => {
    const u = await makeUser();
    const c = sdk(u.token);
    const chat = await startChat(u.token, 'one');
    await c.sendMessage(chat.id, { content: 'two' });
    await roomOf(chat.id).idle();
    const s = c.stream(chat.id, quick);
    await s.until((x) => x.messages.length === 4, within);
    const refreshes: number[] = [];
    s.on('full_refresh', (e) => refreshes.push(e.messages.length));
    const firstUser = s.messages[0];
    if (!firstUser) throw new Error('no first message');
    await c.editMessage(chat.id, firstUser.id, { content: 'one, edited' });
    await roomOf(chat.id).idle();
    await s.until((x) => x.status?.status === 'waiting' && x.messages.length === 2, within);
    expect(refreshes).toEqual([1]);
    expect(s.messages).toEqual((await c.listMessages(chat.id)).messages);
    expect(textOf(s.messages[0]?.content ?? [])).toBe('one, edited');
    // A reconnect now resumes after the refreshed history, and repeats nothing.
    await serverCloses(chat.id, 1012);
    await s.until((x) => x.connections === 2 && x.connected, within);
    expect(s.messages).toEqual((await c.listMessages(chat.id)).messages);
    expect(s.resumeCounts.duplicateMessages).toBe(0);
    await s.close();
  });
});

describe('ChatStream: endings', () => {
  it('a deleted chat ends the stream with a 404 ChatdError (4404), without reconnecting', async () => {
    const u = await makeUser();
    const chat = await startChat(u.token);
    const c = sdk(u.token);
    const s = c.stream(chat.id, quick);
    await s.until((x) => x.connected, within);
    await c.deleteChat(chat.id);
    await s.closed;
    expect(s.error).toMatchObject({ name: 'ChatdError', status: 404, closeCode: 4404 });
    expect(s.connections).toBe(1);
  });

  it.each([
    [4401, 401],
    [1008, 400],
  ])('a socket the server closes with %i ends the stream (%i), without reconnecting', async (code, status) => {
    const u = await makeUser();
    const chat = await startChat(u.token);
    const s = sdk(u.token).stream(chat.id, quick);
    await s.until((x) => x.connected, within);
    expect(await serverCloses(chat.id, code)).toBe(1);
    await s.closed;
    expect(s.error).toMatchObject({ status, closeCode: code });
    expect(s.connections).toBe(1);
  });

  it("another user's chat, or no credential, is refused before the upgrade and not retried", async () => {
    const u = await makeUser();
    const other = await makeUser();
    const chat = await startChat(u.token);
    const s = sdk(other.token).stream(chat.id, quick);
    await s.closed;
    expect(s.error).toMatchObject({ status: 404, message: 'Resource not found or you do not have access to this resource' });
    const anon = sdk(undefined).stream(chat.id, quick);
    await anon.closed;
    expect(anon.error?.status).toBe(401);
    expect(s.connections + anon.connections).toBe(0);
  });
});

describe('ChatStream: transports', () => {
  it('pings an open socket and the server answers: the socket stays', async () => {
    const u = await makeUser();
    const chat = await startChat(u.token);
    const inner = fetchTransport(workerFetch());
    const counts = { pings: 0, pongs: 0 };
    const counting: StreamTransport = {
      sendsHeaders: true,
      open: async (url, headers) => {
        const socket = await inner.open(url, headers);
        const wrapped: StreamSocket = {
          send: (d) => {
            if (d === '{"type":"ping"}') counts.pings += 1;
            socket.send(d);
          },
          close: (code, reason) => {
            socket.close(code, reason);
          },
          listen: (h) => {
            socket.listen({
              message: (data) => {
                if (data === '{"type":"pong"}') counts.pongs += 1;
                h.message(data);
              },
              close: h.close,
            });
          },
        };
        return wrapped;
      },
    };
    const s = sdk(u.token, { transport: counting }).stream(chat.id, { pingIntervalMs: 5, pongTimeoutMs: 2000 });
    await expect.poll(() => counts.pongs, { timeout: 10_000, interval: 5 }).toBeGreaterThanOrEqual(5);
    expect(counts.pings).toBeGreaterThanOrEqual(counts.pongs);
    expect(s.connections).toBe(1);
    await s.close();
  });

  it('opens the stream with a ticket when its transport cannot send headers (a browser), a new one per connect', async () => {
    const u = await makeUser();
    const chat = await startChat(u.token);
    const inner = fetchTransport(workerFetch());
    const urls: string[] = [];
    const browserLike: StreamTransport = {
      sendsHeaders: false,
      open: (url, headers) => {
        expect(headers).toEqual({});
        urls.push(url);
        return inner.open(url, headers);
      },
    };
    const s = sdk(u.token, { transport: browserLike }).stream(chat.id, quick);
    await s.until((x) => x.messages.length === 2, within);
    // The server drops the socket: the SDK asks for a new ticket and comes back.
    await serverCloses(chat.id, 1012);
    await s.until((x) => x.connections === 2 && x.connected, within);
    await s.close();
    expect(urls).toHaveLength(2);
    expect(new Set(urls.map((x) => new URL(x).searchParams.get('ticket'))).size).toBe(2);
    expect(urls.map((x) => new URL(x).searchParams.get('after_id'))).toEqual(['0', String(s.lastId)]);
  });
});

describe('typed calls and ChatdError', () => {
  it('answers typed bodies, and throws one ChatdError with status, message, detail and validations', async () => {
    const u = await makeUser();
    const c = sdk(u.token);
    const chat = await c.createChat({ content: 'hello sdk', labels: { team: 'sdk' } });
    expect(chat).toMatchObject({ owner_id: u.user.id, title: 'hello sdk', labels: { team: 'sdk' } });
    await roomOf(chat.id).idle();

    const bad = await c.createChat({ content: '   ' }).catch((e: unknown) => e);
    expect(bad).toBeInstanceOf(ChatdError);
    expect(bad).toMatchObject({ status: 400, message: 'Validation failed.', validations: [{ field: 'content', detail: 'must not be empty' }] });

    await expect(sdk('abcdefghij-ABCDEFGHIJKLMNOPQRSTUV').me()).rejects.toMatchObject({
      status: 401,
      message: 'You must be signed in to use this route.',
      detail: 'The session token is invalid or has been revoked.',
    });
    await expect(c.getChat(crypto.randomUUID())).rejects.toMatchObject({ status: 404, validations: [] });
    await expect(c.listProviders()).rejects.toMatchObject({ status: 403 });
    await expect(c.createFirstUser({ email: 'x@example.com', username: 'x', password: 'correct horse' })).rejects.toMatchObject({ status: 409 });
    await expect(c.editMessage(chat.id, (await c.listMessages(chat.id)).messages.find((m) => m.role === 'assistant')?.id ?? 0, { content: 'x' })).rejects.toMatchObject({
      status: 400,
      message: 'Only user messages can be edited.',
    });
  });

  it('a request that gets no answer is a ChatdError with status 0', async () => {
    const c = sdk('abcdefghij-ABCDEFGHIJKLMNOPQRSTUV', { fetch: () => Promise.reject(new TypeError('fetch failed')) });
    await expect(c.me()).rejects.toMatchObject({ name: 'ChatdError', status: 0, message: 'The server could not be reached: fetch failed' });
  });
});

describe('paging iterators', () => {
  it("messages(): every message in id order, page by page with after_id, from any after_id", async () => {
    const u = await makeUser();
    const pages: string[] = [];
    const inner = workerFetch();
    const c = sdk(u.token, {
      fetch: (req) => {
        if (req.url.includes('/messages?')) pages.push(new URL(req.url).searchParams.get('after_id') ?? '');
        return inner(req);
      },
    });
    const chat = await c.createChat({ content: 'one' });
    await roomOf(chat.id).idle();
    for (const t of ['two', 'three']) {
      await c.sendMessage(chat.id, { content: t });
      await roomOf(chat.id).idle();
    }
    const all = (await c.listMessages(chat.id, { limit: 200 })).messages;
    expect(all).toHaveLength(6);
    pages.length = 0;
    const seen = [];
    for await (const m of c.messages(chat.id, { pageSize: 4 })) seen.push(m);
    expect(seen).toEqual(all);
    expect(pages).toEqual(['0', String(all[3]?.id)]);
    const rest = [];
    for await (const m of c.messages(chat.id, { afterId: all[1]?.id ?? 0, pageSize: 2 })) rest.push(m.id);
    expect(rest).toEqual(all.slice(2).map((m) => m.id));
  });

  it('chats(): offset pages until a short one, archived or not', async () => {
    const u = await makeUser();
    const c = sdk(u.token);
    const made = [];
    for (let i = 0; i < 5; i++) made.push((await c.createChat({ content: `chat ${i}` })).id);
    for (const id of made) await roomOf(id).idle();
    await c.updateChat(made[0] ?? '', { archived: true });
    const listed = [];
    for await (const chat of c.chats({ pageSize: 2 })) listed.push(chat.id);
    expect(listed).toEqual((await c.listChats({ limit: 200 })).map((x) => x.id));
    expect(new Set(listed)).toEqual(new Set(made.slice(1)));
    const archived = [];
    for await (const chat of c.chats({ archived: true })) archived.push(chat.id);
    expect(archived).toEqual([made[0]]);
  });

  it('users(): every user, oldest first, for owners', async () => {
    const w = await freshWorld();
    const owner = await makeOwner({ env: w.env });
    const others = [];
    for (let i = 0; i < 4; i++) others.push((await makeUser({ env: w.env })).user.id);
    const users = [];
    for await (const x of sdk(owner.token, { env: w.env }).users({ pageSize: 2 })) users.push(x.id);
    expect(users).toEqual([owner.user.id, ...others]);
    await w.db.close();
  });
});

describe('Idempotency-Key on chat creation and message posts', () => {
  /** A fetch to the Worker that loses the answer to the first `n` POSTs (the server did the work), recording keys. */
  function losingAnswers(n: number, how: 'throw' | '503-before' = 'throw') {
    const keys: string[] = [];
    let left = n;
    const inner = workerFetch();
    const fetch = async (req: Request) => {
      if (req.method !== 'POST') return await inner(req);
      keys.push(req.headers.get('idempotency-key') ?? '(none)');
      if (left > 0 && how === '503-before') {
        left -= 1;
        return Response.json({ message: 'The database is unavailable. Try again shortly.' }, { status: 503 });
      }
      const res = await inner(req);
      if (left > 0) {
        left -= 1;
        throw new TypeError('the connection was reset after the server answered');
      }
      return res;
    };
    return { keys, fetch };
  }

  it('a chat creation whose answer is lost is retried with the same key, and makes one chat', async () => {
    const u = await makeUser();
    const lossy = losingAnswers(2);
    const c = sdk(u.token, { fetch: lossy.fetch, retry: { baseMs: 1 } });
    const chat = await c.createChat({ content: 'exactly once' });
    expect(lossy.keys).toHaveLength(3);
    expect(new Set(lossy.keys).size).toBe(1);
    expect(lossy.keys[0]).toMatch(/^[0-9a-f-]{36}$/);
    await roomOf(chat.id).idle();
    expect((await c.listChats()).map((x) => x.id)).toEqual([chat.id]);
    expect((await c.listMessages(chat.id)).messages.map((m) => m.role)).toEqual(['user', 'assistant']);
  });

  it('a message post retried after a lost answer or a 503 is stored once', async () => {
    const u = await makeUser();
    const chat = await sdk(u.token).createChat({ content: 'first' });
    await roomOf(chat.id).idle();
    for (const how of ['throw', '503-before'] as const) {
      const lossy = losingAnswers(1, how);
      const c = sdk(u.token, { fetch: lossy.fetch, retry: { baseMs: 1 } });
      const sent = await c.sendMessage(chat.id, { content: `once (${how})` });
      expect('message' in sent && sent.message.role).toBe('user');
      expect(lossy.keys).toHaveLength(2);
      expect(lossy.keys[0]).toBe(lossy.keys[1]);
      await roomOf(chat.id).idle();
    }
    const texts = (await sdk(u.token).listMessages(chat.id)).messages.filter((m) => m.role === 'user').map((m) => m.content);
    expect(texts).toEqual([[{ type: 'text', text: 'first' }], [{ type: 'text', text: 'once (throw)' }], [{ type: 'text', text: 'once (503-before)' }]]);
  });

  it('every call has its own key unless one is given; reads are never retried', async () => {
    const u = await makeUser();
    const lossy = losingAnswers(0);
    const c = sdk(u.token, { fetch: lossy.fetch });
    const a = await c.createChat({ content: 'a' }, { idempotencyKey: 'my-key-1' });
    const b = await c.createChat({ content: 'a' }, { idempotencyKey: 'my-key-1' });
    const d = await c.createChat({ content: 'a' });
    expect(b.id).toBe(a.id);
    expect(d.id).not.toBe(a.id);
    expect(lossy.keys.slice(0, 2)).toEqual(['my-key-1', 'my-key-1']);
    let reads = 0;
    const down = sdk(u.token, {
      fetch: () => {
        reads += 1;
        return Promise.resolve(Response.json({ message: 'down' }, { status: 503 }));
      },
      retry: { baseMs: 1 },
    });
    await expect(down.getChat(a.id)).rejects.toMatchObject({ status: 503 });
    expect(reads).toBe(1);
    for (const id of [a.id, d.id]) await roomOf(id).idle();
  });
});
