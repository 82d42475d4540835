/**
 * A chat's object holds at most ~6 MiB of messages, however large they are: a chat of maximum-size messages keeps
 * only its newest in memory, serves older catch-ups from Postgres, and re-reads the history for the model.
 */
import { abortAllDurableObjects } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { call, makeUser, messagesOf, roomOf, startChat, testDb, testEnv, textOf } from './helpers';
import { StreamClient } from './stream-client';

const BUDGET = 6 * 1024 * 1024;

describe('the object memory bound', () => {
  it('a chat of 40 messages of 190,000 characters keeps under 6 MiB cached, and every read still sees everything', async () => {
    const u = await makeUser();
    const chat = await startChat(u.token, 'start');
    const db = testDb();
    // 40 maximum-size messages (15 MB of UTF-16), written before this object instance existed.
    await db.query(
      `INSERT INTO chat_messages (chat_id, role, content)
       SELECT $1, CASE WHEN g % 2 = 1 THEN 'user' ELSE 'assistant' END::chat_message_role,
              jsonb_build_array(jsonb_build_object('type', 'text', 'text', g || ' ' || repeat('x', 190000)))
       FROM generate_series(1, 40) g`,
      [chat.id],
    );
    // A model config with room for it all, and no compaction, so the model gets the whole history.
    const cfg = await db.query(
      "INSERT INTO chat_model_configs (provider, model, context_limit, compression_threshold) VALUES ('openai-compat', 'mock-echo', 10000000, 100) RETURNING id",
      [],
    );
    await db.close();
    const configId = z.object({ id: z.string() }).parse(cfg.rows[0]).id;
    await abortAllDurableObjects();

    const all = await messagesOf(chat.id, u.token);
    expect(all).toHaveLength(42);
    const s = await StreamClient.must(chat.id, u.token, 0);
    await s.waitFor('the whole history', (c) => c.messages().length === 42, 20_000);
    expect(s.messages().map((m) => m.id)).toEqual(all.map((m) => m.id));
    s.close();
    let stats = await roomOf(chat.id).stats();
    expect(stats.cachedBytes).toBeLessThanOrEqual(BUDGET);
    expect(stats.cached).toBeLessThan(42);
    expect(stats.cached).toBeGreaterThan(0);

    // Two turns: each reads the history from Postgres again (it no longer fits), and the model gets all of it.
    const tag = crypto.randomUUID().slice(0, 8);
    for (const n of [1, 2]) {
      const r = await call('POST', `/api/v2/chats/${chat.id}/messages`, { token: u.token, body: { content: `turn ${n} ${tag}`, model_config_id: configId } });
      expect(r.status, r.text).toBe(201);
      expect(await roomOf(chat.id).idle()).toBe('waiting');
    }
    stats = await roomOf(chat.id).stats();
    expect(stats.historyReads).toBe(2);
    expect(stats.cachedBytes).toBeLessThanOrEqual(BUDGET);
    const recorded = z
      .array(z.object({ body: z.looseObject({ messages: z.array(z.unknown()) }).nullable() }).loose())
      .parse(await (await fetch(`${testEnv.MOCK_LLM_URL}/__mock/requests`)).json())
      .filter((r) => JSON.stringify(r.body?.messages ?? []).includes(`turn 2 ${tag}`));
    expect(recorded).toHaveLength(1);
    // start + its answer + 40 + turn 1 + its answer + turn 2
    expect(recorded[0]?.body?.messages).toHaveLength(45);
    const after = await messagesOf(chat.id, u.token);
    expect(after.slice(-2).map((m) => textOf(m))).toEqual([`turn 2 ${tag}`, `Echo: turn 2 ${tag}`]);
  }, 60_000);
});
