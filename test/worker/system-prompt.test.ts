/**
 * The deployment system prompt: it changes what every chat of the database sees, so this suite runs in a world of its
 * own (vitest.config.ts, ISOLATED), apart from the suites that count a chat's messages.
 */
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { messagesOf, startChat, testDb, testEnv, textOf, makeUser } from './helpers';

describe('the deployment system prompt', () => {
  it('puts the deployment system prompt first and the model receives it', async () => {
    const u = await makeUser();
    const db = testDb();
    await db.query('INSERT INTO site_configs (key, value) VALUES ($1, $2)', ['system_prompt', JSON.stringify('You are terse.')]);
    try {
      const chat = await startChat(u.token, 'hi there');
      const msgs = await messagesOf(chat.id, u.token);
      expect(msgs.map((m) => m.role)).toEqual(['system', 'user', 'assistant']);
      expect(textOf(msgs[0] ?? { content: [] })).toBe('You are terse.');
      const reqs = z
        .array(z.object({ body: z.object({ messages: z.array(z.object({ role: z.string(), content: z.unknown() })) }).loose() }).loose())
        .parse(await (await fetch(`${testEnv.MOCK_LLM_URL}/__mock/requests`)).json());
      const mine = reqs.filter((q) => JSON.stringify(q.body.messages).includes('hi there'));
      expect(mine.at(-1)?.body.messages[0]).toEqual({ role: 'system', content: 'You are terse.' });
    } finally {
      await db.query("DELETE FROM site_configs WHERE key = 'system_prompt'", []);
      await db.close();
    }
  });
});
