/**
 * The SDK's rules without a server: the stream's resume rules (StreamState), backoff, keyed retries, and ChatStream's
 * reconnects, close codes and ping over a fake transport. Against the real Worker: test/worker/sdk.test.ts and sdk-resume.test.ts.
 */
import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  backoffMs,
  ChatdError,
  ChatStream,
  retryingFetch,
  StreamState,
  type Message,
  type StreamConnector,
  type StreamEvent,
  type StreamSocket,
} from '@chatd-edge/sdk';

const CHAT = randomUUID();
const msg = (id: number, role: Message['role'] = 'assistant', text = `m${id}`): Message => ({
  id,
  chat_id: CHAT,
  role,
  content: [{ type: 'text', text }],
  model_config_id: null,
  created_at: new Date(0).toISOString(),
});
const message = (id: number, role: Message['role'] = 'assistant', text?: string): StreamEvent => ({ type: 'message', chat_id: CHAT, message: msg(id, role, text) });
const part = (seq: number, text = `p${seq} `): StreamEvent => ({
  type: 'message_part',
  chat_id: CHAT,
  message_part: { role: 'assistant', part: { type: 'text', text }, seq },
});
const status = (s: 'waiting' | 'running' | 'error'): StreamEvent => ({ type: 'status', chat_id: CHAT, status: { status: s } });
const queue: StreamEvent = { type: 'queue_update', chat_id: CHAT, queued_messages: [] };

function applied(state: StreamState, events: StreamEvent[], connect = false) {
  const out: StreamEvent[] = [];
  const { gap } = state.apply(events, connect, (e) => out.push(e));
  return { out, gap };
}
const seqs = (events: StreamEvent[]) => events.flatMap((e) => (e.type === 'message_part' ? [e.message_part.seq] : []));
const partText = (e: StreamEvent & { type: 'message_part' }) => ('text' in e.message_part.part ? e.message_part.part.text : '');

describe('StreamState: the resume rules', () => {
  it('follows a turn with tools step by step: a tool result part, the step\'s messages, the next step from seq 0', () => {
    const s = new StreamState(0);
    const call = { type: 'tool_call' as const, tool_call_id: 'c1', name: 'srv__add', args: { a: 1 } };
    const result = { type: 'tool_result' as const, tool_call_id: 'c1', name: 'srv__add', result: { content: [{ type: 'text', text: '1' }] }, is_error: false };
    const toolPart = (seq: number, role: 'assistant' | 'tool', p: typeof call | typeof result): StreamEvent => ({
      type: 'message_part',
      chat_id: CHAT,
      message_part: { role, part: p, seq },
    });
    applied(s, [message(1, 'user'), status('running'), queue, part(0, 'let me add'), toolPart(1, 'assistant', call)], true);
    expect(s.partial?.parts).toEqual([{ type: 'text', text: 'let me add' }, call]);
    // A reconnect mid-step: the replay continues what the client held, so listeners get only the new tool result.
    const again = applied(s, [status('running'), queue, part(0, 'let me add'), toolPart(1, 'assistant', call), toolPart(2, 'tool', result)], true);
    expect(again.out.filter((e) => e.type === 'message_part')).toEqual([toolPart(2, 'tool', result)]);
    expect(s.partial?.text).toBe('let me add');
    // The step's messages end it (nothing to fill in: its text was all streamed); the next step starts at seq 0.
    const step: StreamEvent = { type: 'message', chat_id: CHAT, message: { ...msg(2, 'assistant', 'let me add'), content: [{ type: 'text', text: 'let me add' }, call] } };
    const tool: StreamEvent = { type: 'message', chat_id: CHAT, message: { ...msg(3, 'tool'), content: [result] } };
    const next = applied(s, [step, tool, part(0, 'It is 1.')]);
    expect(next.out.map((e) => e.type)).toEqual(['message', 'message', 'message_part']);
    expect(next.gap).toBe(false);
    expect(s.counts).toMatchObject({ restarts: 0, gaps: 0, completions: 0, duplicateParts: 2 });
    expect(s.partial?.text).toBe('It is 1.');
  });

  it('keeps durable messages in order, each once', () => {
    const s = new StreamState(0);
    applied(s, [message(1, 'user'), status('waiting'), queue], true);
    const again = applied(s, [message(1, 'user'), message(2)]);
    // The repeated user message is dropped; the assistant message came with none of its parts (its turn ran while
    // nothing was followed), so listeners get them from it first.
    expect(again.out.map((e) => e.type)).toEqual(['message_part', 'message']);
    expect(s.messages.map((m) => m.id)).toEqual([1, 2]);
    expect(s.lastId).toBe(2);
    expect(s.counts.duplicateMessages).toBe(1);
  });

  it('live parts extend the partial; a repeat is dropped, seq 0 starts over, a skip is a gap', () => {
    const s = new StreamState(0);
    applied(s, [status('running'), queue], true);
    expect(seqs(applied(s, [part(0, 'a'), part(1, 'b'), part(1, 'b')]).out)).toEqual([0, 1]);
    expect(s.partial?.text).toBe('ab');
    expect(seqs(applied(s, [part(0, 'x')]).out)).toEqual([0]);
    expect(s.partial?.text).toBe('x');
    expect(s.counts.restarts).toBe(1);
    const gap = applied(s, [part(3, 'z'), message(9, 'assistant', 'xyzw')]);
    expect(gap.gap).toBe(true);
    // The skipped parts come from the durable message (the turn is over), then the message itself.
    expect(gap.out.map((e) => (e.type === 'message_part' ? partText(e) : e.type))).toEqual(['yzw', 'message']);
    expect(s.counts.gaps).toBe(1);
  });

  it('a connect that replays the held turn gives listeners only the parts they had not seen', () => {
    const s = new StreamState(0);
    applied(s, [message(1, 'user'), status('running'), queue, part(0), part(1)], true);
    const r = applied(s, [status('running'), queue, part(0), part(1), part(2), part(3)], true);
    expect(seqs(r.out)).toEqual([2, 3]);
    expect(s.partial?.text).toBe('p0 p1 p2 p3 ');
    expect(s.counts).toMatchObject({ duplicateParts: 2, restarts: 0 });
  });

  it('a connect that replays another turn gives listeners that turn from seq 0', () => {
    const s = new StreamState(0);
    applied(s, [message(1, 'user'), status('running'), queue, part(0, 'old'), part(1, 'old')], true);
    const r = applied(s, [status('running'), queue, part(0, 'new')], true);
    expect(seqs(r.out)).toEqual([0]);
    expect(s.partial?.text).toBe('new');
    expect(s.counts.restarts).toBe(1);
  });

  it('a connect after the held turn ended shows its durable message, then the next turn from seq 0', () => {
    const s = new StreamState(0);
    applied(s, [message(1, 'user'), status('running'), queue, part(0), part(1)], true);
    const r = applied(s, [message(2, 'assistant', 'p0 p1 '), message(3, 'user'), status('running'), queue, part(0, 'n')], true);
    expect(r.out.map((e) => e.type)).toEqual(['message', 'message', 'status', 'queue_update', 'message_part']);
    expect(s.partial?.text).toBe('n');
    expect(s.counts.restarts).toBe(0);
    // The turn ended while away and nothing runs now: no partial.
    applied(s, [message(4, 'assistant', 'n'), status('waiting'), queue], true);
    expect(s.partial).toBeNull();
  });

  it('a turn that ended while away: the parts listeners missed come from its durable message, just before it', () => {
    const s = new StreamState(0);
    applied(s, [message(1, 'user'), status('running'), queue, part(0, 'Echo:'), part(1, ' he')], true);
    const r = applied(s, [message(2, 'assistant', 'Echo: hello'), status('waiting'), queue], true);
    expect(r.out.map((e) => (e.type === 'message_part' ? `${e.message_part.seq}:${partText(e)}` : e.type))).toEqual([
      '2:llo',
      'message',
      'status',
      'queue_update',
    ]);
    expect(s.counts.completions).toBe(1);
    // Live, the parts already add up to the message: nothing is added.
    applied(s, [message(3, 'user'), status('running'), part(0, 'Echo: x')]);
    expect(applied(s, [message(4, 'assistant', 'Echo: x'), status('waiting')]).out.map((e) => e.type)).toEqual(['message', 'status']);
    // History of a chat this client did not follow gets no parts.
    const fresh = new StreamState(0);
    expect(seqs(applied(fresh, [message(1, 'user'), message(2), status('waiting'), queue], true).out)).toEqual([]);
  });

  it('full_refresh replaces the history and the id to resume after', () => {
    const s = new StreamState(0);
    applied(s, [message(1, 'user'), message(2), message(3, 'user'), message(4), status('waiting'), queue], true);
    applied(s, [{ type: 'full_refresh', chat_id: CHAT, messages: [msg(1, 'user'), msg(2), msg(3, 'user', 'edited')] }]);
    expect(s.messages.map((m) => m.id)).toEqual([1, 2, 3]);
    expect(s.lastId).toBe(3);
    // An answer after the refresh whose parts never came: its parts from the message, then the message.
    expect(applied(s, [message(5)]).out.map((e) => e.type)).toEqual(['message_part', 'message']);
  });
});

describe('backoff and keyed retries', () => {
  it('full jitter: up to base × 2^attempt, capped', () => {
    expect(backoffMs(0, { baseMs: 100, random: () => 0.999 })).toBe(99);
    expect(backoffMs(3, { baseMs: 100, random: () => 0.5 })).toBe(400);
    expect(backoffMs(20, { baseMs: 100, maxMs: 1000, random: () => 0.999 })).toBe(999);
    expect(backoffMs(5, { random: () => 0 })).toBe(0);
  });

  it('retries a keyed request on 503 and on a lost answer, with the same key and body; others go once', async () => {
    const seen: { key: string | null; body: string }[] = [];
    let n = 0;
    const fetch = retryingFetch(
      async (req) => {
        seen.push({ key: req.headers.get('idempotency-key'), body: await req.text() });
        n += 1;
        if (n === 1) return new Response('{"message":"down"}', { status: 503 });
        if (n === 2) throw new TypeError('connection reset');
        return new Response('{}', { status: 201 });
      },
      { baseMs: 1, random: () => 0.5 },
    );
    const res = await fetch(new Request('http://x/api', { method: 'POST', body: '{"a":1}', headers: { 'idempotency-key': 'k1' } }));
    expect(res.status).toBe(201);
    expect(seen).toEqual([1, 2, 3].map(() => ({ key: 'k1', body: '{"a":1}' })));

    n = 0;
    const once = await fetch(new Request('http://x/api', { method: 'POST', body: '{}' }));
    expect(once.status).toBe(503);
    const giveUp = retryingFetch(() => Promise.resolve(new Response(null, { status: 503 })), { attempts: 3, baseMs: 1 });
    expect((await giveUp(new Request('http://x', { method: 'POST', headers: { 'idempotency-key': 'k' } }))).status).toBe(503);
  });
});

/** A socket the test plays the server of. */
class FakeSocket implements StreamSocket {
  readonly sent: string[] = [];
  closedBy: { code: number; reason: string } | null = null;
  private h: Parameters<StreamSocket['listen']>[0] | null = null;
  constructor(private readonly answerPings: boolean) {}
  send(data: string): void {
    this.sent.push(data);
    if (this.answerPings && data === '{"type":"ping"}') queueMicrotask(() => this.h?.message('{"type":"pong"}'));
  }
  close(code = 1000, reason = ''): void {
    this.closedBy ??= { code, reason };
    // The server's side of the closing handshake.
    queueMicrotask(() => this.h?.close(code, reason));
  }
  listen(h: Parameters<StreamSocket['listen']>[0]): void {
    this.h = h;
  }
  frame(events: unknown): void {
    this.h?.message(JSON.stringify(events));
  }
  serverClose(code: number, reason = ''): void {
    this.h?.close(code, reason);
  }
}

/** A connector whose connects the test answers: a socket, or an error. */
function fakeServer(o: { answerPings?: boolean } = {}) {
  const urls: string[] = [];
  const sockets: FakeSocket[] = [];
  const refusals: ChatdError[] = [];
  const connector: StreamConnector = {
    transport: {
      sendsHeaders: true,
      open: (url) => {
        urls.push(url);
        const refusal = refusals.shift();
        if (refusal) return Promise.reject(refusal);
        const s = new FakeSocket(o.answerPings ?? true);
        sockets.push(s);
        return Promise.resolve(s);
      },
    },
    headers: {},
    url: (afterId) => `http://x/stream?after_id=${afterId}`,
    ticket: () => Promise.reject(new Error('no tickets here')),
  };
  const socket = async (n: number) => {
    await expect.poll(() => sockets.length, { timeout: 5000, interval: 2 }).toBeGreaterThanOrEqual(n);
    const s = sockets[n - 1];
    if (!s) throw new Error('no socket');
    return s;
  };
  return { connector, urls, sockets, refusals, socket };
}

const fast = { pingIntervalMs: 0, reconnect: { baseMs: 1, maxMs: 2 } };

describe('ChatStream over a fake transport', () => {
  it('reconnects after a lost socket and resumes after its last durable message', async () => {
    const srv = fakeServer();
    const s = new ChatStream(CHAT, srv.connector, fast);
    (await srv.socket(1)).frame([message(1, 'user'), message(2), status('waiting'), queue]);
    (await srv.socket(1)).serverClose(1006);
    (await srv.socket(2)).frame([message(3, 'user'), status('running'), queue, part(0)]);
    await s.until((x) => x.connections === 2);
    expect(srv.urls).toEqual(['http://x/stream?after_id=0', 'http://x/stream?after_id=2']);
    expect(s.messages.map((m) => m.id)).toEqual([1, 2, 3]);
    expect(s.partial?.text).toBe('p0 ');
    await s.close();
    expect(s.error).toBeNull();
  });

  it.each([
    [4404, 404],
    [4401, 401],
    [1008, 400],
  ])('close code %i ends the stream with a %i ChatdError, without reconnecting', async (code, httpStatus) => {
    const srv = fakeServer();
    const s = new ChatStream(CHAT, srv.connector, fast);
    (await srv.socket(1)).frame([status('waiting'), queue]);
    (await srv.socket(1)).serverClose(code, 'bye');
    await s.closed;
    expect(s.error).toBeInstanceOf(ChatdError);
    expect(s.error).toMatchObject({ status: httpStatus, closeCode: code });
    expect(srv.urls).toHaveLength(1);
  });

  it('retries a refused connect that may pass later (503), not one that cannot (404)', async () => {
    const srv = fakeServer();
    srv.refusals.push(new ChatdError(503, 'down'), new ChatdError(0, 'network'));
    const s = new ChatStream(CHAT, srv.connector, fast);
    (await srv.socket(1)).frame([status('waiting'), queue]);
    await s.until((x) => x.connected);
    expect(srv.urls).toHaveLength(3);
    await s.close();

    const gone = fakeServer();
    gone.refusals.push(new ChatdError(404, 'Resource not found'));
    const t = new ChatStream(CHAT, gone.connector, fast);
    await t.closed;
    expect(t.error?.status).toBe(404);
  });

  it('a socket that does not answer a ping is replaced; one that answers stays', async () => {
    const dead = fakeServer({ answerPings: false });
    const s = new ChatStream(CHAT, dead.connector, { ...fast, pingIntervalMs: 5, pongTimeoutMs: 5 });
    const reasons: string[] = [];
    s.on('disconnect', (e) => reasons.push(e.reason));
    (await dead.socket(1)).frame([status('waiting'), queue]);
    await dead.socket(2);
    expect(reasons[0]).toBe('no answer to a ping');
    expect(dead.sockets[0]?.closedBy?.code).toBe(4000);
    await s.close();

    const alive = fakeServer();
    const t = new ChatStream(CHAT, alive.connector, { ...fast, pingIntervalMs: 2, pongTimeoutMs: 50 });
    const sock = await alive.socket(1);
    sock.frame([status('waiting'), queue]);
    await expect.poll(() => sock.sent.length, { timeout: 5000, interval: 2 }).toBeGreaterThanOrEqual(5);
    expect(alive.sockets).toHaveLength(1);
    expect(new Set(sock.sent)).toEqual(new Set(['{"type":"ping"}']));
    await t.close();
  });

  it('skips event types it does not know; a frame it cannot read ends the stream', async () => {
    const srv = fakeServer();
    const s = new ChatStream(CHAT, srv.connector, fast);
    const types: string[] = [];
    s.on('frame', (f) => types.push(...f.events.map((e) => e.type)));
    (await srv.socket(1)).frame([{ type: 'tool_call', chat_id: CHAT }, status('waiting'), queue]);
    await s.until((x) => x.connected);
    expect(types).toEqual(['status', 'queue_update']);
    (await srv.socket(1)).frame([{ type: 'status', chat_id: CHAT, status: { status: 'sleeping' } }]);
    await s.closed;
    expect(s.error?.message).toMatch(/cannot read/);
  });

  it('iterates the events once each, and ends when the stream does (with its error)', async () => {
    const srv = fakeServer();
    const controller = new AbortController();
    const s = new ChatStream(CHAT, srv.connector, { ...fast, signal: controller.signal });
    const got: string[] = [];
    const done = (async () => {
      for await (const e of s) got.push(e.type === 'message_part' ? `part${e.message_part.seq}` : e.type);
    })();
    (await srv.socket(1)).frame([message(1, 'user'), status('running'), queue, part(0)]);
    (await srv.socket(1)).serverClose(1011);
    (await srv.socket(2)).frame([message(1, 'user'), status('running'), queue, part(0), part(1)]);
    await s.until((x) => x.partial?.parts.length === 2);
    controller.abort();
    await done;
    expect(got).toEqual(['message', 'status', 'queue_update', 'part0', 'status', 'queue_update', 'part1']);

    const srv2 = fakeServer();
    const t = new ChatStream(CHAT, srv2.connector, fast);
    const it2 = (async () => {
      for await (const _ of t) {
        // nothing
      }
    })();
    (await srv2.socket(1)).serverClose(4404);
    await expect(it2).rejects.toMatchObject({ status: 404 });
  });
});
