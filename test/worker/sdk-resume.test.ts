/**
 * The stream's resume rules under fire: turns of 200 parts, and the server closing the socket at random points
 * (seeded: a failure names its seed and replays the same plan) at least 200 times. Every turn, the text assembled from
 * the SDK's `message_part` events (seq 0 = start over) and its `partial` equal the stored assistant message exactly;
 * no durable message and no part reaches a listener twice (a tail the client missed because the turn ended while its
 * socket was down is handed over once, from the durable message).
 */
import { runInDurableObject } from 'cloudflare:test';
import { textOf } from '@chatd-edge/sdk';
import { describe, expect, it } from 'vitest';
import type { ChatRoom } from '../../durable-objects/chat-room';
import { makeUser, mockGate, roomOf, sdk, startChat } from './helpers';

const SEED = 0x18c0ffee;
const PARTS = 200;
const MIN_DROPS = 200;

/** mulberry32: a small seeded generator, so a failing run can be replayed exactly from its seed. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('resume under dropped sockets', () => {
  it(`assembles every ${PARTS}-part turn exactly while the server drops the socket at random points, ${MIN_DROPS}+ times`, { timeout: 180_000 }, async () => {
    const rand = seeded(SEED);
    const u = await makeUser();
    const c = sdk(u.token);
    const chat = await startChat(u.token, 'resume');
    const s = c.stream(chat.id, { pingIntervalMs: 0, reconnect: { baseMs: 2, maxMs: 10, random: rand } });
    await s.until((x) => x.connected && x.messages.length === 2, { timeoutMs: 10_000 });

    // What listeners get: the turn's text rebuilt from the parts (seq 0 = start over), and how many parts came.
    let assembled = '';
    let emittedParts = 0;
    let lastPartial = '';
    const seenIds = new Set<number>();
    let repeatedIds = 0;
    s.on('message_part', (e) => {
      if (e.message_part.seq === 0) assembled = '';
      assembled += e.message_part.part.text;
      emittedParts += 1;
      lastPartial = s.partial?.text ?? '';
    });
    s.on('message', (e) => {
      if (seenIds.has(e.message.id)) repeatedIds += 1;
      seenIds.add(e.message.id);
    });

    // A drop: the chat's object closes every socket it holds (as a restart or a network cut would).
    let drops = 0;
    let dropping: Promise<void> = Promise.resolve();
    const drop = () => {
      dropping = dropping.then(async () => {
        // A point reached while the client reconnects is taken as soon as it is back.
        await s.until((x) => x.connected, { timeoutMs: 20_000 });
        const n = await runInDurableObject(roomOf(chat.id), (_room: ChatRoom, state) => {
          const sockets = state.getWebSockets();
          for (const ws of sockets) ws.close(1012, 'test: dropped');
          return sockets.length;
        });
        drops += n > 0 ? 1 : 0;
      });
      return dropping;
    };

    const stats = { turns: 0, gatedDrops: 0, randomDrops: 0 };
    for (let turn = 1; drops < MIN_DROPS; turn++) {
      if (turn > 60) throw new Error(`seed ${SEED}: only ${drops} drops after 60 turns`);
      // Random points in the turn (parts received so far), plus one where the model is held mid-turn.
      const plan = Array.from({ length: 12 }, () => Math.floor(rand() * (PARTS + 1))).sort((a, b) => a - b);
      const holdAt = 1 + Math.floor(rand() * (PARTS - 2));
      const gate = mockGate();
      assembled = '';
      emittedParts = 0;
      lastPartial = '';
      const connectionsBefore = s.connections;
      const offPlan = s.on('change', () => {
        while (plan.length > 0 && (plan[0] ?? 0) <= (s.partial?.parts.length ?? (emittedParts > 0 ? PARTS : 0))) {
          plan.shift();
          stats.randomDrops += 1;
          void drop();
        }
      });
      await c.sendMessage(chat.id, { content: `turn ${turn} [[mock chunks=${PARTS} chunk_delay_ms=1]] ${gate.directive(holdAt)}` });
      await gate.waiting(1);
      // Held mid-turn: the client has the first holdAt parts; drop it, and see it resume them without repeats.
      await s.until((x) => (x.partial?.parts.length ?? 0) === holdAt, { timeoutMs: 20_000 });
      await dropping;
      const before = s.connections;
      await drop();
      stats.gatedDrops += 1;
      await s.until((x) => x.connected && x.connections > before, { timeoutMs: 20_000 });
      expect(s.partial?.parts.length, `seed ${SEED}, turn ${turn}`).toBe(holdAt);
      const answered = new Promise<number>((resolve) => {
        const off = s.on('message', (e) => {
          if (e.message.role === 'assistant') {
            off();
            resolve(e.message.id);
          }
        });
      });
      await gate.open();
      const assistant = await answered;
      await s.until((x) => x.status?.status === 'waiting' && x.connected, { timeoutMs: 20_000 });
      offPlan();
      await dropping;
      const stored = (await c.listMessages(chat.id, { after_id: assistant - 1, limit: 1 })).messages[0];
      const text = textOf(stored?.content ?? []);
      expect(text.length, `seed ${SEED}, turn ${turn}`).toBeGreaterThan(PARTS);
      expect(assembled, `seed ${SEED}, turn ${turn}: the parts listeners got`).toBe(text);
      expect(lastPartial, `seed ${SEED}, turn ${turn}: the partial before the message`).toBe(text);
      // Every part the server sent reached listeners once; a tail missed while away (the turn ended then) came as one.
      expect(emittedParts, `seed ${SEED}, turn ${turn}: parts given to listeners`).toBeLessThanOrEqual(PARTS);
      stats.turns = turn;
      expect(s.connections).toBeGreaterThan(connectionsBefore);
    }
    await s.close();
    const server = (await c.listMessages(chat.id, { limit: 200 })).messages;
    expect(s.messages).toEqual(server);
    expect(repeatedIds).toBe(0);
    expect(s.resumeCounts.restarts).toBe(0);
    expect(s.resumeCounts.gaps).toBe(0);
    console.log(
      JSON.stringify({
        seed: SEED,
        turns: stats.turns,
        partsPerTurn: PARTS,
        drops,
        gatedDrops: stats.gatedDrops,
        randomDropPoints: stats.randomDrops,
        connections: s.connections,
        ...s.resumeCounts,
      }),
    );
    expect(drops).toBeGreaterThanOrEqual(MIN_DROPS);
  });
});
