import { env } from 'cloudflare:workers';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { runScheduled } from '../../functions/scheduled';
import { runRetention } from '../../functions/services/retention';
import { call, ErrorBody, makeOwner, makeUser, sdk, startChat, streamOf, testDb, within } from './helpers';

const DAY = 86_400_000;

async function setSettings(values: Record<string, unknown>) {
  const db = testDb();
  for (const [k, v] of Object.entries(values)) {
    await db.query(
      'INSERT INTO site_configs (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value',
      [k, JSON.stringify(v)],
    );
  }
  await db.close();
}

afterEach(async () => {
  const db = testDb();
  await db.query("DELETE FROM site_configs WHERE key IN ('retention_days', 'auto_archive_days', 'system_prompt')", []);
  await db.close();
});

/** A chat row with a message and a queued message, dated `ageDays` ago. */
async function oldChat(ownerId: string, ageDays: number, archived: boolean, status = 'waiting') {
  const db = testDb();
  const id = crypto.randomUUID();
  const at = new Date(Date.now() - ageDays * DAY);
  await db.query('INSERT INTO chats (id, owner_id, title, archived, status, updated_at) VALUES ($1, $2, $3, $4, $5::chat_status, $6)', [
    id,
    ownerId,
    `age ${ageDays}`,
    archived,
    status,
    at,
  ]);
  await db.query(`INSERT INTO chat_messages (chat_id, role, content) VALUES ($1, 'user', '[{"type":"text","text":"x"}]')`, [id]);
  await db.query(`INSERT INTO chat_queued_messages (chat_id, content, position) VALUES ($1, '[{"type":"text","text":"q"}]', 1)`, [id]);
  await db.query(`INSERT INTO chat_summaries (chat_id, through_message_id, content) VALUES ($1, 1, 's')`, [id]);
  await db.close();
  return id;
}

async function rowsFor(chatIds: string[]) {
  const db = testDb();
  const out: Record<string, number> = {};
  for (const t of ['chats', 'chat_messages', 'chat_queued_messages', 'chat_summaries']) {
    const col = t === 'chats' ? 'id' : 'chat_id';
    const r = await db.query(`SELECT count(*)::int AS n FROM ${t} WHERE ${col} = ANY($1::uuid[])`, [chatIds]);
    out[t] = z.object({ n: z.number() }).parse(r.rows[0]).n;
  }
  await db.close();
  return out;
}

async function archivedOf(id: string) {
  const db = testDb();
  const r = await db.query('SELECT archived FROM chats WHERE id = $1', [id]);
  await db.close();
  return z.object({ archived: z.boolean() }).parse(r.rows[0]).archived;
}

describe('deployment settings', () => {
  it('have defaults, validate, and are owner-only', async () => {
    const owner = await makeOwner();
    const member = await makeUser();
    const get = (p: string, token: string) => call('GET', `/api/v2/chats/config/${p}`, { token });
    const put = (p: string, token: string, body: unknown) => call('PUT', `/api/v2/chats/config/${p}`, { token, body });
    expect((await get('retention-days', owner.token)).body).toEqual({ retention_days: 30 });
    expect((await get('auto-archive-days', owner.token)).body).toEqual({ auto_archive_days: 0 });
    expect((await get('system-prompt', owner.token)).body).toEqual({ system_prompt: '' });

    expect((await put('retention-days', owner.token, { retention_days: 7 })).body).toEqual({ retention_days: 7 });
    expect((await put('auto-archive-days', owner.token, { auto_archive_days: 3 })).body).toEqual({ auto_archive_days: 3 });
    expect((await put('system-prompt', owner.token, { system_prompt: 'Be kind.' })).body).toEqual({ system_prompt: 'Be kind.' });
    expect((await get('retention-days', owner.token)).body).toEqual({ retention_days: 7 });

    for (const [p, body] of [
      ['retention-days', { retention_days: -1 }],
      ['retention-days', { retention_days: 1.5 }],
      ['retention-days', { retention_days: '30' }],
      ['retention-days', {}],
      ['auto-archive-days', { auto_archive_days: 1, extra: 1 }],
      ['system-prompt', { system_prompt: 5 }],
    ] as const) {
      const r = await put(p, owner.token, body);
      expect(r.status, `${p} ${JSON.stringify(body)}`).toBe(400);
      ErrorBody.parse(r.body);
    }
    expect((await get('retention-days', owner.token)).body).toEqual({ retention_days: 7 });
    for (const p of ['retention-days', 'auto-archive-days', 'system-prompt']) {
      expect((await get(p, member.token)).status).toBe(403);
      expect((await put(p, member.token, {})).status).toBe(403);
      expect((await call('GET', `/api/v2/chats/config/${p}`)).status).toBe(401);
    }
  });

  it('the system prompt set through the API opens new chats', async () => {
    const owner = await makeOwner();
    await call('PUT', '/api/v2/chats/config/system-prompt', { token: owner.token, body: { system_prompt: 'Answer in French.' } });
    const chat = await startChat(owner.token, 'bonjour');
    const r = await call('GET', `/api/v2/chats/${chat.id}/messages`, { token: owner.token });
    const msgs = z.object({ messages: z.array(z.object({ role: z.string() }).loose()) }).parse(r.body).messages;
    expect(msgs.map((m) => m.role)).toEqual(['system', 'user', 'assistant']);
  });
});

describe('retention purge', () => {
  it('deletes exactly the archived chats past the cutoff, with all their child rows', async () => {
    const u = await makeUser();
    const old = await oldChat(u.user.id, 40, true);
    const recent = await oldChat(u.user.id, 10, true);
    const live = await oldChat(u.user.id, 100, false);
    const report = await runScheduled(env, new Date());
    expect(report.jobs['retention']?.ok).toBe(true);
    expect(report.retention?.ran).toBe(true);
    expect(await rowsFor([old])).toEqual({ chats: 0, chat_messages: 0, chat_queued_messages: 0, chat_summaries: 0 });
    expect(await rowsFor([recent, live])).toEqual({ chats: 2, chat_messages: 2, chat_queued_messages: 2, chat_summaries: 2 });
  });

  it('retention 0 deletes nothing', async () => {
    const u = await makeUser();
    await setSettings({ retention_days: 0 });
    const old = await oldChat(u.user.id, 4000, true);
    const report = await runScheduled(env, new Date());
    expect(report.retention).toMatchObject({ ran: true, deleted: 0 });
    expect((await rowsFor([old])).chats).toBe(1);
  });

  it('auto-archives idle chats but never running ones', async () => {
    const u = await makeUser();
    await setSettings({ auto_archive_days: 7, retention_days: 0 });
    const idle = await oldChat(u.user.id, 10, false);
    const running = await oldChat(u.user.id, 10, false, 'running');
    const interrupting = await oldChat(u.user.id, 10, false, 'interrupting');
    const fresh = await oldChat(u.user.id, 1, false);
    const report = await runScheduled(env, new Date());
    expect(report.retention?.archived).toBeGreaterThanOrEqual(1);
    expect(await archivedOf(idle)).toBe(true);
    expect(await archivedOf(running)).toBe(false);
    expect(await archivedOf(interrupting)).toBe(false);
    expect(await archivedOf(fresh)).toBe(false);
  });

  it('uses the injected clock', async () => {
    const u = await makeUser();
    const chat = await oldChat(u.user.id, 1, true);
    await runScheduled(env, new Date());
    expect((await rowsFor([chat])).chats).toBe(1);
    await runScheduled(env, new Date(Date.now() + 60 * DAY));
    expect((await rowsFor([chat])).chats).toBe(0);
  });

  it('two overlapping runs do not both work: the second skips while the lock is held', async () => {
    const u = await makeUser();
    const old = await oldChat(u.user.id, 40, true);
    const holder = testDb();
    await holder.query("SELECT pg_advisory_lock(hashtext('chatd:retention')::bigint)", []);
    try {
      const report = await runScheduled(env, new Date());
      expect(report.retention?.ran).toBe(false);
      expect(report.jobs['retention']?.detail).toMatch(/skipped/);
      expect((await rowsFor([old])).chats).toBe(1);
    } finally {
      await holder.query("SELECT pg_advisory_unlock(hashtext('chatd:retention')::bigint)", []);
      await holder.close();
    }
    expect((await runScheduled(env, new Date())).retention?.ran).toBe(true);
    expect((await rowsFor([old])).chats).toBe(0);
  });

  it('holds its lock only inside each batch transaction, as a transaction-mode pooler (Neon pooled) requires', async () => {
    const u = await makeUser();
    const ids = [];
    for (let i = 0; i < 3; i++) ids.push(await oldChat(u.user.id, 60 + i, true));
    const probe = testDb();
    const db = testDb();
    const heldBetweenBatches: number[] = [];
    try {
      const report = await runRetention(db, {
        now: new Date(),
        batchSize: 1,
        onDeleted: async () => {
          const r = await probe.query(
            "SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory' AND objid = (hashtext('chatd:retention')::bigint & 4294967295)::oid",
            [],
          );
          heldBetweenBatches.push(z.object({ n: z.number() }).parse(r.rows[0]).n);
        },
      });
      expect(report).toMatchObject({ ran: true, complete: true });
      expect(report.deleted).toBeGreaterThanOrEqual(3);
    } finally {
      await probe.close();
      await db.close();
    }
    expect(heldBetweenBatches.length).toBeGreaterThanOrEqual(3);
    expect(heldBetweenBatches.every((n) => n === 0)).toBe(true);
    expect((await rowsFor(ids)).chats).toBe(0);
  });

  it('stops at the time budget and the next run continues', async () => {
    const u = await makeUser();
    const ids = [];
    for (let i = 0; i < 5; i++) ids.push(await oldChat(u.user.id, 50 + i, true));
    const opts = { batchSize: 2, budgetMs: 0 };
    const r1 = await runScheduled(env, new Date(), opts);
    expect(r1.retention).toMatchObject({ deleted: 2, complete: false });
    expect((await rowsFor(ids)).chats).toBe(3);
    const r2 = await runScheduled(env, new Date(), opts);
    expect(r2.retention).toMatchObject({ deleted: 2, complete: false });
    const r3 = await runScheduled(env, new Date(), opts);
    expect(r3.retention).toMatchObject({ deleted: 1, complete: true });
    expect((await rowsFor(ids)).chats).toBe(0);
  });

  it("a purged chat's object closes its sockets and forgets its cache", async () => {
    const u = await makeUser();
    const chat = await startChat(u.token, 'soon gone');
    const s = streamOf(chat.id, u.token);
    await s.until((x) => x.connected, within);
    const db = testDb();
    await db.query("UPDATE chats SET archived = true, updated_at = now() - interval '90 days' WHERE id = $1", [chat.id]);
    await db.close();
    await runScheduled(env, new Date());
    await s.closed;
    expect(s.error).toMatchObject({ status: 404, closeCode: 4404 });
    expect(s.connections).toBe(1);
    expect(await env.CHAT_ROOM.getByName(chat.id).stats()).toMatchObject({ cached: 0, sockets: 0 });
    await expect(sdk(u.token).getChat(chat.id)).rejects.toMatchObject({ status: 404 });
  });
});

describe("telling chats' objects", () => {
  /** The real objects, behind a wrapper whose first `failures` calls of `what` per chat throw. */
  function flaky(what: 'purge' | 'refresh', failures: number) {
    const log: { id: string; name: string }[] = [];
    const chatObject = (e: Env, id: string) => {
      const real = e.CHAT_ROOM.getByName(id);
      const call = async (name: 'purge' | 'refresh') => {
        log.push({ id, name });
        if (name === what && log.filter((c) => c.id === id && c.name === what).length <= failures) throw new Error('object unreachable');
        await real[name]();
      };
      return { purge: () => call('purge'), refresh: () => call('refresh') };
    };
    return { calls: (id: string) => log.filter((c) => c.id === id).map((c) => c.name), chatObject };
  }

  it('retries a purge that fails, so the object stops serving the deleted chat', async () => {
    const u = await makeUser();
    const chat = await startChat(u.token, 'gone soon');
    expect((await call('GET', `/api/v2/chats/${chat.id}`, { token: u.token })).status).toBe(200); // the object holds it
    const db = testDb();
    await db.query("UPDATE chats SET archived = true, updated_at = now() - interval '90 days' WHERE id = $1", [chat.id]);
    await db.close();
    const f = flaky('purge', 2);
    const r = await runScheduled(env, new Date(), { chatObject: f.chatObject, retryDelaysMs: [0, 0, 0] });
    expect(r.jobs['retention']?.ok).toBe(true);
    expect(f.calls(chat.id)).toEqual(['purge', 'purge', 'purge']);
    expect((await call('GET', `/api/v2/chats/${chat.id}`, { token: u.token })).status).toBe(404);
  });

  it('retries a refresh that fails after an auto-archive', async () => {
    const u = await makeUser();
    const chat = await startChat(u.token, 'idle soon');
    const db = testDb();
    await db.query("UPDATE chats SET updated_at = now() - interval '10 days' WHERE id = $1", [chat.id]);
    await db.close();
    await setSettings({ auto_archive_days: 5, retention_days: 0 });
    const f = flaky('refresh', 1);
    await runScheduled(env, new Date(), { chatObject: f.chatObject, retryDelaysMs: [0] });
    expect(f.calls(chat.id)).toEqual(['refresh', 'refresh']);
    const got = await call('GET', `/api/v2/chats/${chat.id}`, { token: u.token });
    expect(z.object({ archived: z.boolean() }).parse(got.body).archived).toBe(true);
  });

  it('gives up after the bounded retries and says so', async () => {
    const u = await makeUser();
    const id = await oldChat(u.user.id, 90, true);
    const f = flaky('purge', 99);
    const r = await runScheduled(env, new Date(), { chatObject: f.chatObject, retryDelaysMs: [0, 0] });
    expect(f.calls(id)).toEqual(['purge', 'purge', 'purge']);
    expect(r.jobs['retention']?.detail).toMatch(/objects not told: [1-9]\d* purges/);
    expect((await rowsFor([id])).chats).toBe(0);
  });
});
