/**
 * Turns a client missed entirely: its socket is refused (every connect fails, as with the network down) while whole
 * turns start and end. When it is let back in, the connect frame brings their durable messages, and listeners get each
 * missed assistant message's parts first, from seq 0, adding up to its text; a turn it was following when the socket
 * went down gets only its missing tail. The first frame's messages are history: messages only, no parts.
 */
import { runInDurableObject } from 'cloudflare:test';
import { fetchTransport, textOf, type Message, type StreamEvent, type StreamTransport } from '@chatd-edge/sdk';
import { describe, expect, it } from 'vitest';
import type { ChatRoom } from '../../durable-objects/chat-room';
import { makeUser, mockGate, roomOf, sdk, startChat, streamOf, within, workerFetch } from './helpers';

/** A transport whose connects can be refused (they fail as a network error would) until `allow()`. */
function refusable() {
  const inner = fetchTransport(workerFetch());
  const state = { refused: false, refusals: 0, waiters: [] as (() => void)[] };
  const transport: StreamTransport = {
    sendsHeaders: true,
    open: async (url, headers) => {
      if (state.refused) {
        state.refusals += 1;
        for (const w of state.waiters.splice(0)) w();
        throw new TypeError('test: connection refused');
      }
      return await inner.open(url, headers);
    },
  };
  return {
    transport,
    refuse: () => {
      state.refused = true;
    },
    allow: () => {
      state.refused = false;
    },
    /** Resolves once a connect has been refused (the client is really away). */
    refusedOnce: () =>
      new Promise<void>((resolve) => {
        if (state.refusals > 0) resolve();
        else state.waiters.push(resolve);
      }),
  };
}

async function dropSockets(chatId: string): Promise<void> {
  await runInDurableObject(roomOf(chatId), (_room: ChatRoom, state) => {
    for (const ws of state.getWebSockets()) ws.close(1012, 'test: dropped');
  });
}

/** Every listener event in order, as `message:<id>` or `part:<seq>:<text>`. */
function record(events: StreamEvent[]): { log: string[]; partsBefore(m: Message): string[] } {
  const log: string[] = [];
  for (const e of events) {
    if (e.type === 'message') log.push(`message:${e.message.id}`);
    if (e.type === 'message_part') log.push(`part:${e.message_part.seq}:${'text' in e.message_part.part ? e.message_part.part.text : ''}`);
  }
  return {
    log,
    /** The parts listeners got just before message m (since the previous message). */
    partsBefore(m) {
      const at = log.indexOf(`message:${m.id}`);
      let start = at;
      while (start > 0 && !(log[start - 1] ?? '').startsWith('message:')) start -= 1;
      return log.slice(start, at);
    },
  };
}

describe('ChatStream: turns missed while the socket was refused', () => {
  it('rebuilds every missed turn as parts from seq 0 that add up to its message; history comes as messages only', async () => {
    const u = await makeUser();
    const c = sdk(u.token);
    const chat = await startChat(u.token, 'first [[mock chunks=5]]');
    const net = refusable();
    const away = sdk(u.token, { transport: net.transport }).stream(chat.id, { pingIntervalMs: 0, reconnect: { baseMs: 1, maxMs: 5 } });
    const events: StreamEvent[] = [];
    away.on('message', (e) => events.push(e));
    away.on('message_part', (e) => events.push(e));
    await away.until((x) => x.connected && x.messages.length === 2 && x.status?.status === 'waiting', within);
    // History (the first frame): messages only.
    expect(events.map((e) => e.type)).toEqual(['message', 'message']);

    net.refuse();
    await dropSockets(chat.id);
    await net.refusedOnce();
    // Two whole turns while the client cannot connect; a second stream (not refused) shows when they are done.
    const watcher = streamOf(chat.id, u.token);
    await c.sendMessage(chat.id, { content: 'second [[mock chunks=7]]' });
    await watcher.until((x) => x.messages.length === 4 && x.status?.status === 'waiting', within);
    await c.sendMessage(chat.id, { content: 'third [[mock chunks=9]]' });
    await watcher.until((x) => x.messages.length === 6 && x.status?.status === 'waiting', within);
    await watcher.close();
    expect(away.connected).toBe(false);

    net.allow();
    await away.until((x) => x.connected && x.messages.length === 6, within);
    const server = (await c.listMessages(chat.id)).messages;
    expect(away.messages).toEqual(server);
    const r = record(events);
    for (const m of server.slice(2)) {
      if (m.role !== 'assistant') {
        expect(r.partsBefore(m)).toEqual([]);
        continue;
      }
      const parts = r.partsBefore(m);
      expect(parts.length).toBeGreaterThan(0);
      // From seq 0, in order, and adding up to the message's text exactly.
      expect(parts.map((p) => Number(p.split(':')[1]))).toEqual(parts.map((_, i) => i));
      expect(parts.map((p) => p.split(':').slice(2).join(':')).join('')).toBe(textOf(m.content));
    }
    expect(away.partial).toBeNull();
    expect(away.resumeCounts).toMatchObject({ duplicateMessages: 0, restarts: 0, gaps: 0, completions: 2 });
    await away.close();
  });

  it('a turn followed when the socket went down gets only its missing tail; the next missed turn starts at seq 0', async () => {
    const u = await makeUser();
    const c = sdk(u.token);
    const chat = await startChat(u.token, 'first');
    const net = refusable();
    const away = sdk(u.token, { transport: net.transport }).stream(chat.id, { pingIntervalMs: 0, reconnect: { baseMs: 1, maxMs: 5 } });
    await away.until((x) => x.connected && x.messages.length === 2 && x.status?.status === 'waiting', within);
    const events: StreamEvent[] = [];
    away.on('message', (e) => events.push(e));
    away.on('message_part', (e) => events.push(e));

    const gate = mockGate();
    await c.sendMessage(chat.id, { content: `held [[mock chunks=10]] ${gate.directive(4)}` });
    await gate.waiting(1);
    await away.until((x) => x.partial?.parts.length === 4, within);
    net.refuse();
    await dropSockets(chat.id);
    await net.refusedOnce();
    const watcher = streamOf(chat.id, u.token);
    await gate.open();
    await watcher.until((x) => x.messages.length === 4 && x.status?.status === 'waiting', within);
    await c.sendMessage(chat.id, { content: 'after [[mock chunks=6]]' });
    await watcher.until((x) => x.messages.length === 6 && x.status?.status === 'waiting', within);
    await watcher.close();

    net.allow();
    await away.until((x) => x.connected && x.messages.length === 6, within);
    const server = (await c.listMessages(chat.id)).messages;
    expect(away.messages).toEqual(server);
    const [, , , held, , after] = server;
    if (held === undefined || after === undefined) throw new Error('six messages expected');
    const r = record(events);
    // The followed turn: its 4 parts live, then the rest as one part continuing at seq 4.
    const heldParts = r.partsBefore(held);
    expect(heldParts.map((p) => Number(p.split(':')[1]))).toEqual([0, 1, 2, 3, 4]);
    expect(heldParts.map((p) => p.split(':').slice(2).join(':')).join('')).toBe(textOf(held.content));
    // The turn never seen: from seq 0, not appended to the followed turn's parts.
    const afterParts = r.partsBefore(after);
    expect(afterParts.map((p) => p.split(':')[1])).toEqual(['0']);
    expect(afterParts.map((p) => p.split(':').slice(2).join(':')).join('')).toBe(textOf(after.content));
    expect(away.resumeCounts).toMatchObject({ duplicateMessages: 0, restarts: 0, gaps: 0, completions: 2 });
    await away.close();
  });
});
