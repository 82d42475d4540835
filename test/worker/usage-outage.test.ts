/**
 * Cost through a real Postgres outage: a priced turn whose model finishes while Postgres is stopped keeps its answer
 * in the outbox, and once Postgres is back the answer is written once, with its cost counted once in the message,
 * in both ledger tables, and in the user's spend meter. (Runs apart: it stops the Postgres every suite shares.)
 */
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { makeOwner, makeUser, messagesOf, mockGate, postgres, roomOf, sdk, streamOf, testDb, watch } from './helpers';
import { limitOf, pricedModel, setUserLimit } from './usage-fixtures';

const UNIT_PER_TOKEN = { input_per_mtok: '1000000', output_per_mtok: '1000000' };

describe('cost through a Postgres outage', () => {
  it('a priced answer written after the outage is counted once: message, ledger, meter', async () => {
    const owner = await makeOwner();
    const u = await makeUser();
    const cfg = await pricedModel(owner, UNIT_PER_TOKEN);
    await setUserLimit(owner, u.user.id, { period: 'day', amount: '1000' });
    // The meter reads the ledger now, so the turn's spend check needs no Postgres later.
    expect(await limitOf(u.token)).toMatchObject({ spent: '0.000000' });
    const tag = crypto.randomUUID().slice(0, 8);
    const gate = mockGate();
    const chat = await sdk(u.token).createChat({ content: `outage ${tag} ${gate.directive()}`, model_config_id: cfg });
    await gate.waiting(1);
    const stream = streamOf(chat.id, u.token);
    const seen = watch(stream);
    await stream.until((x) => x.status?.status === 'running', { timeoutMs: 10_000 });

    await postgres.pause();
    let resumed = false;
    try {
      // The model finishes while Postgres is down: the ending waits in the outbox, and the chat says so.
      await gate.open();
      await stream.until(() => seen.events.some((e) => e.type === 'status' && e.status.last_error?.kind === 'database_unavailable'), {
        timeoutMs: 20_000,
      });
      const mark = seen.events.length;
      await postgres.resume();
      resumed = true;
      await stream.until(
        () => {
          const tail = seen.events.slice(mark);
          const at = tail.findIndex((e) => e.type === 'message' && e.message.role === 'assistant');
          return at >= 0 && tail.slice(at).some((e) => e.type === 'status' && e.status.status === 'waiting');
        },
        { timeoutMs: 20_000 },
      );
    } finally {
      if (!resumed) await postgres.resume();
      await stream.close();
    }
    expect(await roomOf(chat.id).idle()).toBe('waiting');

    // "outage <tag>" is 2 words in, "Echo: outage <tag>" 3 out: 5 at one unit per token.
    const answers = (await messagesOf(chat.id, u.token)).filter((m) => m.role === 'assistant');
    expect(answers.map((m) => m.usage?.cost)).toEqual(['5.000000']);
    const db = testDb();
    try {
      const Row = z.array(z.object({ turns: z.number(), c: z.string() }));
      const byChat = Row.parse((await db.query('SELECT turns, cost_micros::text AS c FROM usage_by_chat WHERE chat_id = $1', [chat.id])).rows);
      const daily = Row.parse((await db.query('SELECT turns, cost_micros::text AS c FROM usage_daily WHERE user_id = $1', [u.user.id])).rows);
      expect(byChat).toEqual([{ turns: 1, c: '5000000' }]);
      expect(daily).toEqual([{ turns: 1, c: '5000000' }]);
    } finally {
      await db.close();
    }
    // The meter heard of it once (the outbox's write is what reported it), and agrees with the ledger.
    expect(await limitOf(u.token)).toMatchObject({ amount: '1000.000000', spent: '5.000000' });
  });
});
