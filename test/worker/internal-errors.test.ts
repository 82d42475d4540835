/**
 * Only request validation is a 400. Anything else that fails while the server parses its own data (a database
 * row, an RPC answer) is an internal error: 500 with the generic body, naming no internal field.
 */
import { abortAllDurableObjects } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import { call, ErrorBody, makeUser, startChat, testDb } from './helpers';

describe('internal parse failures', () => {
  it('a database row the Worker cannot parse is a 500 with the generic message, not a 400 naming columns', async () => {
    const u = await makeUser();
    const chat = await startChat(u.token, 'hello');
    const db = testDb();
    // Passes the table's CHECK (an array) but not the Worker's idea of a part.
    await db.query(`INSERT INTO chat_messages (chat_id, role, content) VALUES ($1, 'assistant', '[1]')`, [chat.id]);
    await db.close();
    // Written behind the chat object's back: a cold object reads it.
    await abortAllDurableObjects();
    const r = await call('GET', `/api/v2/chats/${chat.id}/messages`, { token: u.token });
    expect(r.status).toBe(500);
    expect(ErrorBody.parse(r.body)).toEqual({ message: 'An internal error occurred.' });
    expect(r.text).not.toMatch(/content|validations|chat_messages/);
  });

  it('request validation stays a 400 with validations', async () => {
    const u = await makeUser();
    const r = await call('GET', '/api/v2/chats?limit=0', { token: u.token });
    expect(r.status).toBe(400);
    expect(ErrorBody.parse(r.body).validations?.[0]?.field).toBe('limit');
  });
});
