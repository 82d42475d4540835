/**
 * The stream checks Origin before the upgrade: browsers send it (and the user's cookie) from any page, so only
 * the deployment's own origin and STREAM_ALLOWED_ORIGINS may open it from a browser; clients without an Origin
 * are not browsers and are unaffected.
 */
import { createExecutionContext } from 'cloudflare:test';
import { env, exports } from 'cloudflare:workers';
import { describe, expect, it } from 'vitest';
import worker from '../../functions/index';
import { ErrorBody, makeUser, startChat } from './helpers';

async function open(chatId: string, cookie: string, origin: string | null, e?: Env) {
  const headers: Record<string, string> = { upgrade: 'websocket', cookie };
  if (origin !== null) headers.origin = origin;
  const url = `http://chatd.test/api/v2/chats/${chatId}/stream`;
  const res = e ? await worker.fetch(new Request(url, { headers }), e, createExecutionContext()) : await exports.default.fetch(url, { headers });
  const ws = res.webSocket;
  if (ws) {
    ws.accept();
    ws.close(1000, 'done');
    return { status: res.status, body: null };
  }
  return { status: res.status, body: ErrorBody.parse(await res.json()) };
}

describe('the stream and Origin', () => {
  it('refuses a page of another origin with 403 before the upgrade', async () => {
    const u = await makeUser();
    const chat = await startChat(u.token, 'hello');
    for (const origin of ['https://evil.example', 'http://chatd.test.evil.example', 'null', 'http://chatd.test:8080']) {
      const r = await open(chat.id, `session_token=${u.token}`, origin);
      expect(r.status, origin).toBe(403);
      expect(r.body?.message).toBe('Pages of this origin may not open the stream.');
    }
  });

  it("accepts the deployment's own origin, no Origin at all, and STREAM_ALLOWED_ORIGINS", async () => {
    const u = await makeUser();
    const chat = await startChat(u.token, 'hello');
    expect((await open(chat.id, `session_token=${u.token}`, 'http://chatd.test')).status).toBe(101);
    expect((await open(chat.id, `session_token=${u.token}`, null)).status).toBe(101);
    const allowing: Env = { ...env, STREAM_ALLOWED_ORIGINS: 'https://app.example.com/, https://other.example' };
    expect((await open(chat.id, `session_token=${u.token}`, 'https://app.example.com', allowing)).status).toBe(101);
    expect((await open(chat.id, `session_token=${u.token}`, 'https://evil.example', allowing)).status).toBe(403);
  });
});
