/**
 * The audit events of credentials, users, providers, model configs, MCP servers, settings, spend limits, chat ACLs
 * and share links: each change through the API writes exactly one event, with its actor, action and target, and
 * none of them holds the secret the change carried (provider key, MCP header value, password, API key, share token).
 * Isolated (vitest.config.ts): it changes deployment settings.
 */
import { describe, expect, it } from 'vitest';
import { call, makeOwner, makeUser, startChat, testDb, testEnv, uniq } from './helpers';

interface Row {
  action: string;
  actor_id: string | null;
  target_type: string | null;
  detail: Record<string, unknown>;
}

async function eventsFor(targetId: string): Promise<Row[]> {
  const db = testDb();
  try {
    const r = await db.query('SELECT action, actor_id::text, target_type, detail FROM audit_events WHERE target_id = $1 ORDER BY id', [targetId]);
    return r.rows as Row[];
  } finally {
    await db.close();
  }
}

const summary = (rows: Row[]) => rows.map((e) => [e.action, e.actor_id, e.target_type]);

async function ok(method: string, path: string, token: string, body: unknown, status: number): Promise<unknown> {
  const r = await call(method, path, { token, body });
  expect(r.status, JSON.stringify(r.body)).toBe(status);
  return r.body;
}

describe('audit events of the other changes', () => {
  it('API keys, sessions, password and user changes write one event each', async () => {
    const owner = await makeOwner();
    const u = await makeUser();
    const key = (await ok('POST', '/api/v2/users/me/keys', u.token, { name: 'ci' }, 201)) as { id: string; key: string };
    await ok('DELETE', `/api/v2/users/me/keys/${key.id}`, u.token, undefined, 204);
    expect(summary(await eventsFor(key.id))).toEqual([
      ['key.created', u.user.id, 'key'],
      ['key.deleted', u.user.id, 'key'],
    ]);
    await ok('DELETE', '/api/v2/users/me/sessions', u.token, undefined, 204);
    await ok('PUT', '/api/v2/users/me/password', u.token, { old_password: u.password, new_password: 'another-good-password' }, 204);
    await ok('PATCH', `/api/v2/users/${u.user.id}`, owner.token, { suspended: true }, 200);
    const events = await eventsFor(u.user.id);
    expect(summary(events)).toEqual([
      ['sessions.revoked', u.user.id, 'user'],
      ['password.changed', u.user.id, 'user'],
      ['user.updated', owner.user.id, 'user'],
    ]);
    expect(events[2]?.detail).toEqual({ email: u.user.email, suspended: true });
  });

  it('providers, model configs and MCP servers write one event per change', async () => {
    const owner = await makeOwner();
    const p = (await ok('POST', '/api/v2/chats/providers', owner.token, { provider: 'anthropic', api_key: 'sk-one', base_url: 'https://api.example.com/v1' }, 201)) as { id: string };
    await ok('PATCH', `/api/v2/chats/providers/${p.id}`, owner.token, { api_key: 'sk-two' }, 200);
    const m = (await ok('POST', '/api/v2/chats/model-configs', owner.token, { provider: 'anthropic', model: `m-${uniq()}`, context_limit: 1000 }, 201)) as { id: string };
    await ok('PATCH', `/api/v2/chats/model-configs/${m.id}`, owner.token, { display_name: 'renamed' }, 200);
    await ok('DELETE', `/api/v2/chats/model-configs/${m.id}`, owner.token, undefined, 204);
    await ok('DELETE', `/api/v2/chats/providers/${p.id}`, owner.token, undefined, 204);
    const pe = await eventsFor(p.id);
    expect(summary(pe)).toEqual([
      ['provider.created', owner.user.id, 'provider'],
      ['provider.updated', owner.user.id, 'provider'],
      ['provider.deleted', owner.user.id, 'provider'],
    ]);
    expect(pe[1]?.detail).toMatchObject({ provider: 'anthropic', has_key: true, fields: ['api_key'] });
    expect(summary(await eventsFor(m.id))).toEqual([
      ['model_config.created', owner.user.id, 'model_config'],
      ['model_config.updated', owner.user.id, 'model_config'],
      ['model_config.deleted', owner.user.id, 'model_config'],
    ]);
    const s = (await ok('POST', '/api/v2/chats/mcp-servers', owner.token, { name: `s${uniq()}`.slice(0, 32), url: testEnv.MCP_SERVER_URL, headers: { 'x-api': 'hv-one' } }, 201)) as { id: string };
    await ok('PATCH', `/api/v2/chats/mcp-servers/${s.id}`, owner.token, { headers: { 'x-api': 'hv-two' } }, 200);
    await ok('DELETE', `/api/v2/chats/mcp-servers/${s.id}`, owner.token, undefined, 204);
    const se = await eventsFor(s.id);
    expect(summary(se)).toEqual([
      ['mcp_server.created', owner.user.id, 'mcp_server'],
      ['mcp_server.updated', owner.user.id, 'mcp_server'],
      ['mcp_server.deleted', owner.user.id, 'mcp_server'],
    ]);
    expect(se[0]?.detail).toMatchObject({ has_headers: true, host: new URL(testEnv.MCP_SERVER_URL).host });
  });

  it('settings and spend limits write one event per change', async () => {
    const owner = await makeOwner();
    const u = await makeUser();
    const puts: [string, unknown, string][] = [
      ['/api/v2/chats/config/retention-days', { retention_days: 30 }, 'retention_days'],
      ['/api/v2/chats/config/auto-archive-days', { auto_archive_days: 0 }, 'auto_archive_days'],
      ['/api/v2/chats/config/system-prompt', { system_prompt: '' }, 'system_prompt'],
      ['/api/v2/chats/config/spend-limit', { period: 'month', amount: null }, 'spend_limit'],
      ['/api/v2/chats/config/title-model', { title_model_config_id: null }, 'title_model'],
      ['/api/v2/chats/config/mcp-allowed-hosts', { hosts: [] }, 'mcp_allowed_hosts'],
      ['/api/v2/chats/config/debug-runs', { debug_runs: 'off', retention_days: 7 }, 'debug_runs'],
    ];
    for (const [path, body, name] of puts) {
      await ok('PUT', path, owner.token, body, 200);
      expect(summary(await eventsFor(name)), name).toEqual([['settings.updated', owner.user.id, 'setting']]);
    }
    await ok('PUT', `/api/v2/users/${u.user.id}/spend-limit`, owner.token, { period: 'day', amount: '2.5' }, 200);
    const le = await eventsFor(u.user.id);
    expect(summary(le)).toEqual([['spend_limit.updated', owner.user.id, 'user']]);
    expect(le[0]?.detail).toEqual({ period: 'day', amount: '2.5' });
  });

  it('chat ACL changes and share links write one event each', async () => {
    const owner = await makeUser();
    const viewer = await makeUser();
    const chat = await startChat(owner.token, 'acl');
    await ok('PATCH', `/api/v2/chats/${chat.id}/acl`, owner.token, { users: { [viewer.user.id]: 'viewer' } }, 200);
    const ae = await eventsFor(chat.id);
    expect(summary(ae)).toEqual([['chat.acl_updated', owner.user.id, 'chat']]);
    expect(ae[0]?.detail).toEqual({ users: { [viewer.user.id]: 'viewer' }, groups: {} });
    const link = (await ok('POST', `/api/v2/chats/${chat.id}/share-links`, owner.token, {}, 201)) as { id: string };
    await ok('DELETE', `/api/v2/chats/${chat.id}/share-links/${link.id}`, owner.token, undefined, 204);
    expect(summary(await eventsFor(link.id))).toEqual([
      ['share_link.created', owner.user.id, 'share_link'],
      ['share_link.deleted', owner.user.id, 'share_link'],
    ]);
  });

  it('no secret of these changes reaches the log', async () => {
    const SECRET = `S3CRET-${uniq()}`;
    const owner = await makeOwner();
    const u = await makeUser();
    const p = (await ok('POST', '/api/v2/chats/providers', owner.token, { provider: 'google', api_key: `${SECRET}-pk` }, 201)) as { id: string };
    await ok('PATCH', `/api/v2/chats/providers/${p.id}`, owner.token, { api_key: `${SECRET}-pk2` }, 200);
    const s = (await ok('POST', '/api/v2/chats/mcp-servers', owner.token, { name: `s${uniq()}`.slice(0, 32), url: testEnv.MCP_SERVER_URL, headers: { authorization: `Bearer ${SECRET}-h` } }, 201)) as { id: string };
    await ok('PATCH', `/api/v2/chats/mcp-servers/${s.id}`, owner.token, { headers: { 'x-token': `${SECRET}-h2` } }, 200);
    await ok('PUT', '/api/v2/users/me/password', u.token, { old_password: u.password, new_password: `${SECRET}-pw` }, 204);
    const key = (await ok('POST', '/api/v2/users/me/keys', u.token, { name: 'k' }, 201)) as { key: string };
    const chat = await startChat(u.token, 'shared');
    const link = (await ok('POST', `/api/v2/chats/${chat.id}/share-links`, u.token, {}, 201)) as { token: string; url: string };
    const db = testDb();
    try {
      const all = (await db.query('SELECT row_to_json(e)::text AS t FROM audit_events e')).rows.map((r) => (r as { t: string }).t).join('\n');
      expect(all).toContain('provider.updated');
      for (const needle of [SECRET, key.key, link.token, link.url]) expect(all.includes(needle), needle).toBe(false);
    } finally {
      await db.close();
    }
  });
});
