/**
 * The audit log: each action writes exactly one event in the same transaction as its change (a forced failure after
 * the change leaves neither), owners read it with filters, paging and CSV, members get 403, and no secret reaches it.
 */
import { describe, expect, it } from 'vitest';
import { call, makeOwner, makeUser, sdk, testDb, uniq } from './helpers';
import { audit, audited } from '../../functions/services/audit';
import { createGroup } from '../../functions/services/groups';
import { AUDIT_ACTIONS } from '../../functions/core/shapes/sso';
import { runScheduled } from '../../functions/scheduled';
import { env } from 'cloudflare:workers';
import { callback, configureSso, providerUser, throughProvider } from './sso-helpers';

async function eventsFor(targetId: string): Promise<{ action: string; actor_id: string | null; detail: unknown }[]> {
  const db = testDb();
  try {
    const r = await db.query('SELECT action, actor_id::text, detail FROM audit_events WHERE target_id = $1 ORDER BY id', [targetId]);
    return r.rows as { action: string; actor_id: string | null; detail: unknown }[];
  } finally {
    await db.close();
  }
}

describe('audit events', () => {
  it('each group action writes exactly one event, with the actor', async () => {
    const owner = await makeOwner();
    const member = await makeUser();
    const g = await sdk(owner.token).createGroup({ name: `a-${uniq()}` });
    expect((await call('PATCH', `/api/v2/groups/${g.id}`, { token: owner.token, body: { name: `b-${uniq()}` } })).status).toBe(200);
    await sdk(owner.token).addGroupMember(g.id, member.user.id);
    await sdk(owner.token).addGroupMember(g.id, member.user.id); // idempotent: no change, no event
    expect((await call('DELETE', `/api/v2/groups/${g.id}/members/${member.user.id}`, { token: owner.token })).status).toBe(204);
    expect((await call('DELETE', `/api/v2/groups/${g.id}`, { token: owner.token })).status).toBe(204);
    const events = await eventsFor(g.id);
    expect(events.map((e) => [e.action, e.actor_id])).toEqual([
      ['group.created', owner.user.id],
      ['group.updated', owner.user.id],
      ['group.member_added', owner.user.id],
      ['group.member_removed', owner.user.id],
      ['group.deleted', owner.user.id],
    ]);
  });

  it('user creation, password login, a failed login and logout write one event each', async () => {
    const owner = await makeOwner();
    const email = `au-${uniq()}@example.com`;
    const created = await call('POST', '/api/v2/users', { token: owner.token, body: { email, username: `au${uniq()}`.slice(0, 60), password: 'a-good-password' } });
    expect(created.status).toBe(201);
    const id = (created.body as { id: string }).id;
    expect((await call('POST', '/api/v2/users/login', { body: { email, password: 'wrong-password' } })).status).toBe(401);
    const login = await call('POST', '/api/v2/users/login', { body: { email, password: 'a-good-password' } });
    expect(login.status).toBe(201);
    const token = (login.body as { session_token: string }).session_token;
    expect((await call('POST', '/api/v2/users/logout', { token })).status).toBe(204);
    expect((await eventsFor(id)).map((e) => e.action)).toEqual(['user.created', 'user.login_failed', 'user.login', 'user.logout']);
  });

  it('a forced failure after the change leaves neither the change nor its event', async () => {
    const db = testDb();
    const name = `forced-${uniq()}`;
    try {
      await expect(
        audited(
          db,
          (tx) => createGroup(tx, name),
          () => {
            throw new Error('forced failure after the change');
          },
        ),
      ).rejects.toThrow('forced failure after the change');
      expect((await db.query('SELECT 1 FROM groups WHERE name = $1', [name])).rowCount).toBe(0);
      expect((await db.query("SELECT 1 FROM audit_events WHERE detail->>'name' = $1", [name])).rowCount).toBe(0);
      // And the event failing (an unknown action breaks no constraint, so: an actor id that is not a UUID) undoes the change.
      await expect(
        audited(db, (tx) => createGroup(tx, name), (g) => ({ action: 'group.created', actor: { id: 'not-a-uuid', email: 'x' }, ip: null, target_id: g.id })),
      ).rejects.toThrow();
      expect((await db.query('SELECT 1 FROM groups WHERE name = $1', [name])).rowCount).toBe(0);
    } finally {
      await db.close();
    }
  });

  it('owners filter by action, actor and time, page newest first, and download CSV; members get 403', async () => {
    const owner = await makeOwner();
    const member = await makeUser();
    const names = [`p1-${uniq()}`, `p2-${uniq()}`, `p3-${uniq()}`];
    const t0 = new Date(Date.now() - 1000).toISOString();
    const ids: string[] = [];
    for (const n of names) ids.push((await sdk(owner.token).createGroup({ name: n })).id);
    const q = `actor_id=${owner.user.id}&action=group.created&from=${encodeURIComponent(t0)}`;
    const page1 = await call('GET', `/api/v2/audit?${q}&limit=2`, { token: owner.token });
    expect(page1.status).toBe(200);
    const p1 = page1.body as { events: { target_id: string; action: string; actor_email: string }[] };
    expect(p1.events.map((e) => e.target_id)).toEqual([ids[2], ids[1]]);
    expect(p1.events[0]).toMatchObject({ action: 'group.created', actor_email: owner.user.email });
    const page2 = await call('GET', `/api/v2/audit?${q}&limit=2&offset=2`, { token: owner.token });
    expect((page2.body as { events: { target_id: string }[] }).events.map((e) => e.target_id)).toEqual([ids[0]]);
    const future = await call('GET', `/api/v2/audit?${q}&to=${encodeURIComponent(t0)}`, { token: owner.token });
    expect(future.body).toEqual({ events: [] });
    const csv = await call('GET', `/api/v2/audit?${q}&format=csv`, { token: owner.token });
    expect(csv.status).toBe(200);
    expect(csv.headers.get('content-type')).toBe('text/csv; charset=utf-8');
    const lines = csv.text.trim().split('\r\n');
    expect(lines[0]).toBe('id,at,actor_id,actor_email,action,target_type,target_id,ip,detail');
    expect(lines.slice(1).map((l) => l.split(',')[6])).toEqual([ids[2], ids[1], ids[0]]);
    expect((await call('GET', '/api/v2/audit', { token: member.token })).status).toBe(403);
    expect((await call('GET', '/api/v2/audit?action=nope', { token: owner.token })).status).toBe(400);
    expect((await call('GET', '/api/v2/audit?limit=0', { token: owner.token })).status).toBe(400);
  });

  it('never holds a secret: every event type fed a known secret, and the real flows that carry secrets', async () => {
    const SECRET = `S3CRET-${uniq()}`;
    const db = testDb();
    try {
      for (const action of AUDIT_ACTIONS) {
        await audit(db, {
          action,
          actor: null,
          ip: null,
          target_type: 'test',
          target_id: 'x',
          detail: { client_secret: SECRET, password: SECRET, api_key: SECRET, token: SECRET, nested: { session_token: SECRET, key: SECRET, headers: { authorization: SECRET } }, list: [{ secret: SECRET }] },
        });
      }
    } finally {
      await db.close();
    }
    // Real flows: SSO settings with a client secret, a user made with a password, a failed and a good password login,
    // a full SSO login (its session token and the provider's code).
    const world = await configureSso({ client_secret: SECRET });
    await configureSso({ client_secret: 'chatd-local-secret-not-for-production' });
    const email = `sec-${uniq()}@example.com`;
    expect((await call('POST', '/api/v2/users', { token: world.owner.token, body: { email, username: `s${uniq()}`.slice(0, 60), password: SECRET } })).status).toBe(201);
    expect((await call('POST', '/api/v2/users/login', { body: { email, password: `${SECRET}x` } })).status).toBe(401);
    const login = await call('POST', '/api/v2/users/login', { body: { email, password: SECRET } });
    const sessionToken = (login.body as { session_token: string }).session_token;
    const ssoMail = `sso-${uniq()}@example.com`;
    const started = await throughProvider(await providerUser({ email: ssoMail, groups: ['staff'] }));
    const done = await callback(started);
    expect(done.session).not.toBeNull();
    const check = testDb();
    try {
      const all = (await check.query("SELECT row_to_json(e)::text AS t FROM audit_events e WHERE at > now() - interval '10 minutes'")).rows.map((r) => (r as { t: string }).t).join('\n');
      expect(all.length).toBeGreaterThan(0);
      for (const needle of [SECRET, sessionToken, done.session ?? 'x', started.callback.searchParams.get('code') ?? 'x', started.flowCookie]) {
        expect(all.includes(needle)).toBe(false);
      }
      const ssoEvents = await check.query("SELECT action FROM audit_events WHERE actor_email = $1 OR detail->>'email' = $1 ORDER BY id", [ssoMail]);
      expect(ssoEvents.rows.map((r) => (r as { action: string }).action)).toEqual(['user.created', 'user.login']);
    } finally {
      await check.close();
    }
  });
});

describe('audit retention', () => {
  it('the cron purges events older than audit_retention_days (default 365) and keeps the rest', async () => {
    const db = testDb();
    const tag = `ret-${uniq()}`;
    try {
      await db.query(
        `INSERT INTO audit_events (at, action, target_id, detail) VALUES
           (now() - interval '366 days', 'settings.updated', $1, '{}'), (now() - interval '364 days', 'settings.updated', $1, '{}')`,
        [tag],
      );
      const report = await runScheduled(env, new Date());
      expect(report.jobs.purge_audit?.ok).toBe(true);
      const left = await db.query("SELECT (now() - at) < interval '365 days' AS young FROM audit_events WHERE target_id = $1", [tag]);
      expect(left.rows).toEqual([{ young: true }]);
    } finally {
      await db.close();
    }
  });
});
