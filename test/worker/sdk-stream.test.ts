/**
 * The SDK's ChatStream against the real Worker: its state (messages, status, queue, partial), full_refresh after an
 * edit, the close codes that end it, the ping the server answers, and the ticket a browser opens it with.
 * The resume rules under many dropped sockets: sdk-resume.test.ts.
 */
import { runInDurableObject } from 'cloudflare:test';
import { fetchTransport, textOf, type StreamSocket, type StreamTransport } from '@chatd-edge/sdk';
import { describe, expect, it } from 'vitest';
import type { ChatRoom } from '../../durable-objects/chat-room';
import { makeUser, mockGate, roomOf, sdk, startChat, workerFetch } from './helpers';

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
