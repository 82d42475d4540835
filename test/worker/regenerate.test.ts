/** `POST /chats/{id}/regenerate` (docs/conversation-tools.md): the last answer goes as an edit removes it, a new one runs. */
import { describe, expect, it } from 'vitest';
import { call, ErrorBody, makeUser, messagesOf, mockGate, roomOf, sdk, startChat, streamOf, testDb, textOf, watch, within } from './helpers';

describe('regenerate', () => {
  it('removes the answer after the last user message, sends full_refresh, and stores a new answer', async () => {
    const u = await makeUser();
    const chat = await startChat(u.token, 'tell me something');
    const before = await messagesOf(chat.id, u.token);
    expect(before.map((m) => m.role)).toEqual(['user', 'assistant']);
    const old = before[1];
    if (!old) throw new Error('no answer');
    const s = streamOf(chat.id, u.token, { afterId: old.id });
    const seen = watch(s);
    try {
      await s.until((x) => x.connected, within);
      const running = await sdk(u.token).regenerate(chat.id);
      expect(running).toMatchObject({ id: chat.id, status: 'running', last_error: null });
      await s.until(() => seen.turnEnded(), within);
      const refresh = seen.events.find((e) => e.type === 'full_refresh');
      expect(refresh).toEqual({ type: 'full_refresh', chat_id: chat.id, messages: [before[0]] });
    } finally {
      await s.close();
    }
    expect(await roomOf(chat.id).idle()).toBe('waiting');
    const after = await messagesOf(chat.id, u.token);
    expect(after.map((m) => m.role)).toEqual(['user', 'assistant']);
    expect(after[0]).toEqual(before[0]);
    expect(after[1]?.id).toBeGreaterThan(old.id);
    expect(textOf(after[1] ?? { content: [] })).toBe('Echo: tell me something');
    const db = testDb();
    try {
      const r = await db.query('SELECT deleted FROM chat_messages WHERE id = $1', [old.id]);
      expect(r.rows).toEqual([{ deleted: true }]);
    } finally {
      await db.close();
    }
  });

  it('runs the new answer on model_config_id when given', async () => {
    const u = await makeUser();
    const chat = await startChat(u.token, 'again please');
    const cfgs = await sdk(u.token).listModels();
    const cfg = cfgs[0];
    if (!cfg) throw new Error('no model');
    await sdk(u.token).regenerate(chat.id, { model_config_id: cfg.id });
    expect(await roomOf(chat.id).idle()).toBe('waiting');
    const after = await messagesOf(chat.id, u.token);
    expect(after.map((m) => [m.role, m.model_config_id])).toEqual([
      ['user', chat.last_model_config_id],
      ['assistant', cfg.id],
    ]);
  });

  it('answers 409 while a turn runs, and changes nothing', async () => {
    const u = await makeUser();
    const gate = mockGate();
    const chat = await sdk(u.token).createChat({ content: `hold ${gate.directive()}` });
    await gate.waiting();
    const r = await call('POST', `/api/v2/chats/${chat.id}/regenerate`, { token: u.token });
    expect(r.status).toBe(409);
    expect(ErrorBody.parse(r.body).message).toBe('A turn is running: wait for it to end (or interrupt it), then regenerate.');
    await gate.open();
    expect(await roomOf(chat.id).idle()).toBe('waiting');
    expect((await messagesOf(chat.id, u.token)).map((m) => m.role)).toEqual(['user', 'assistant']);
  });

  it("answers 404 for another user's chat and 400 for an unknown model config", async () => {
    const owner = await makeUser();
    const stranger = await makeUser();
    const chat = await startChat(owner.token, 'mine');
    expect((await call('POST', `/api/v2/chats/${chat.id}/regenerate`, { token: stranger.token })).status).toBe(404);
    const bad = await call('POST', `/api/v2/chats/${chat.id}/regenerate`, { token: owner.token, body: { model_config_id: crypto.randomUUID() } });
    expect(bad.status).toBe(400);
    const junk = await call('POST', `/api/v2/chats/${chat.id}/regenerate`, { token: owner.token, body: { model_config_id: 'x' } });
    expect(ErrorBody.parse(junk.body).validations?.map((v) => v.field)).toEqual(['model_config_id']);
    expect((await messagesOf(chat.id, owner.token)).map((m) => m.role)).toEqual(['user', 'assistant']);
  });
});
