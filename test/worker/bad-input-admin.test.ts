/**
 * Bad input on the routes the Worker serves from its own connection (users, credentials, providers, model configs,
 * deployment settings, agents), in a fresh database: every case is a 4xx with the standard error body, and no row
 * of any table changes.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import type { Db } from '../../functions/core/db';
import { allTables, expectRefused, fingerprint, type BadCase } from './bad-input';
import { call, freshWorld, makeOwner, makeUser } from './helpers';

interface Ids {
  owner: string;
  member: string;
  provider: string;
  config: string;
  agent: string;
}
type Case = BadCase<Ids>;

const BIG = 'x'.repeat(5 * 1024 * 1024);
const NUL = 'a\u0000b';
const UNKNOWN = '00000000-0000-4000-8000-00000000abcd';
const deep = (n: number): unknown => (n === 0 ? 'leaf' : { d: deep(n - 1) });
const cred = { email: 'new@example.com', username: 'newbie', password: 'long enough' };
const resource = { source: 'a.md', body_kind: 'skill', body: 'x', status: 'ok' };

const users: Case[] = [
  { name: 'first: wrong types', method: 'POST', path: '/api/v2/users/first', as: 'none', body: { email: 1, username: [], password: {} }, status: 400 },
  { name: 'first: missing fields', method: 'POST', path: '/api/v2/users/first', as: 'none', body: {}, status: 400 },
  { name: 'first: 1000-character email', method: 'POST', path: '/api/v2/users/first', as: 'none', body: { ...cred, email: `${'a'.repeat(990)}@x.co` }, status: 400 },
  { name: 'first: unknown field', method: 'POST', path: '/api/v2/users/first', as: 'none', body: { ...cred, admin: true }, status: 400 },
  { name: 'first: 5 MB body', method: 'POST', path: '/api/v2/users/first', as: 'none', body: { ...cred, password: BIG }, status: 413 },
  { name: 'first: valid, but a user exists', method: 'POST', path: '/api/v2/users/first', as: 'none', body: cred, status: 409 },
  { name: 'login: empty body', method: 'POST', path: '/api/v2/users/login', as: 'none', body: {}, status: 400 },
  { name: 'login: email is a number', method: 'POST', path: '/api/v2/users/login', as: 'none', body: { email: 5, password: 'x' }, status: 400 },
  { name: 'login: unknown field', method: 'POST', path: '/api/v2/users/login', as: 'none', body: { email: 'a@b.co', password: 'x', remember: true }, status: 400 },
  { name: 'login: 257-character password', method: 'POST', path: '/api/v2/users/login', as: 'none', body: { email: 'a@b.co', password: 'p'.repeat(257) }, status: 400 },
  { name: 'login: 5 MB body', method: 'POST', path: '/api/v2/users/login', as: 'none', raw: JSON.stringify({ email: BIG, password: 'x' }), status: 413 },
  { name: 'login: not JSON', method: 'POST', path: '/api/v2/users/login', as: 'none', raw: '{"email":', status: 400 },
  { name: 'login: form body', method: 'POST', path: '/api/v2/users/login', as: 'none', raw: 'email=a', headers: { 'content-type': 'application/x-www-form-urlencoded' }, status: 415 },
  { name: 'login: a JSON array', method: 'POST', path: '/api/v2/users/login', as: 'none', raw: '[1,2,3]', status: 400 },
  { name: 'login: NUL in the email', method: 'POST', path: '/api/v2/users/login', as: 'none', body: { email: NUL, password: 'x' }, status: 400 },
  { name: 'create user: unknown role', method: 'POST', path: '/api/v2/users', as: 'owner', body: { ...cred, roles: ['admin'] }, status: 400 },
  { name: 'create user: no roles', method: 'POST', path: '/api/v2/users', as: 'owner', body: { ...cred, roles: [] }, status: 400 },
  { name: 'create user: roles is a string', method: 'POST', path: '/api/v2/users', as: 'owner', body: { ...cred, roles: 'owner' }, status: 400 },
  { name: 'create user: bad email', method: 'POST', path: '/api/v2/users', as: 'owner', body: { ...cred, email: 'x@' }, status: 400 },
  { name: 'create user: username with a space', method: 'POST', path: '/api/v2/users', as: 'owner', body: { ...cred, username: 'a b' }, status: 400 },
  { name: 'create user: as a member', method: 'POST', path: '/api/v2/users', as: 'member', body: cred, status: 403 },
  { name: 'create user: anonymous', method: 'POST', path: '/api/v2/users', as: 'none', body: cred, status: 401 },
  { name: 'users: limit 0', method: 'GET', path: '/api/v2/users?limit=0', as: 'owner', status: 400 },
  { name: 'users: negative limit', method: 'GET', path: '/api/v2/users?limit=-1', as: 'owner', status: 400 },
  { name: 'users: huge limit', method: 'GET', path: '/api/v2/users?limit=1000000000', as: 'owner', status: 400 },
  { name: 'users: negative offset', method: 'GET', path: '/api/v2/users?offset=-5', as: 'owner', status: 400 },
  { name: 'users: limit not a number', method: 'GET', path: '/api/v2/users?limit=abc', as: 'owner', status: 400 },
  { name: 'patch user: bad UUID', method: 'PATCH', path: '/api/v2/users/not-a-uuid', as: 'owner', body: { suspended: true }, status: 400 },
  { name: 'patch user: unknown role', method: 'PATCH', path: (i) => `/api/v2/users/${i.member}`, as: 'owner', body: { roles: ['root'] }, status: 400 },
  { name: 'patch user: suspended is a string', method: 'PATCH', path: (i) => `/api/v2/users/${i.member}`, as: 'owner', body: { suspended: 'yes' }, status: 400 },
  { name: 'patch user: empty body', method: 'PATCH', path: (i) => `/api/v2/users/${i.member}`, as: 'owner', body: {}, status: 400 },
  { name: 'patch user: unknown field', method: 'PATCH', path: (i) => `/api/v2/users/${i.member}`, as: 'owner', body: { suspended: true, email: 'x@y.z' }, status: 400 },
  { name: 'patch user: unknown user', method: 'PATCH', path: `/api/v2/users/${UNKNOWN}`, as: 'owner', body: { suspended: true }, status: 404 },
  { name: 'patch user: the last owner suspends themselves', method: 'PATCH', path: (i) => `/api/v2/users/${i.owner}`, as: 'owner', body: { suspended: true }, status: 409 },
  { name: 'patch user: as a member', method: 'PATCH', path: (i) => `/api/v2/users/${i.owner}`, as: 'member', body: { roles: ['member'] }, status: 403 },
];

const credentials: Case[] = [
  { name: 'key: negative lifetime', method: 'POST', path: '/api/v2/users/me/keys', as: 'member', body: { lifetime_seconds: -1 }, status: 400 },
  { name: 'key: huge lifetime', method: 'POST', path: '/api/v2/users/me/keys', as: 'member', body: { lifetime_seconds: 1e308 }, status: 400 },
  { name: 'key: fractional lifetime', method: 'POST', path: '/api/v2/users/me/keys', as: 'member', body: { lifetime_seconds: 90.5 }, status: 400 },
  { name: 'key: lifetime as a string', method: 'POST', path: '/api/v2/users/me/keys', as: 'member', body: { lifetime_seconds: '3600' }, status: 400 },
  { name: 'key: 65-character name', method: 'POST', path: '/api/v2/users/me/keys', as: 'member', body: { name: 'n'.repeat(65) }, status: 400 },
  { name: 'key: name is a number', method: 'POST', path: '/api/v2/users/me/keys', as: 'member', body: { name: 7 }, status: 400 },
  { name: 'key: NUL in the name', method: 'POST', path: '/api/v2/users/me/keys', as: 'member', body: { name: NUL }, status: 400 },
  { name: 'key: unpaired surrogate in the name', method: 'POST', path: '/api/v2/users/me/keys', as: 'member', raw: '{"name":"\\ud83d"}', status: 400 },
  { name: 'key: 5 MB body', method: 'POST', path: '/api/v2/users/me/keys', as: 'member', body: { name: BIG }, status: 413 },
  { name: 'delete key: malformed id', method: 'DELETE', path: '/api/v2/users/me/keys/x', as: 'member', status: 400 },
  { name: 'delete key: 11-character id', method: 'DELETE', path: '/api/v2/users/me/keys/abcdefghijk', as: 'member', status: 400 },
  { name: "delete key: someone else's session", method: 'DELETE', path: '/api/v2/users/me/keys/zzzzzzzzzz', as: 'member', status: 404 },
  { name: 'password: no new password', method: 'PUT', path: '/api/v2/users/me/password', as: 'member', body: { old_password: 'x' }, status: 400 },
  { name: 'password: new one too short', method: 'PUT', path: '/api/v2/users/me/password', as: 'member', body: { old_password: 'x', new_password: 'short' }, status: 400 },
  { name: 'password: 257-character old one', method: 'PUT', path: '/api/v2/users/me/password', as: 'member', body: { old_password: 'o'.repeat(257), new_password: 'long enough' }, status: 400 },
  { name: 'password: unknown field', method: 'PUT', path: '/api/v2/users/me/password', as: 'member', body: { old_password: 'x', new_password: 'long enough', force: true }, status: 400 },
  { name: 'password: wrong current password', method: 'PUT', path: '/api/v2/users/me/password', as: 'member', body: { old_password: 'not it', new_password: 'long enough' }, status: 400 },
  { name: 'sessions: anonymous', method: 'DELETE', path: '/api/v2/users/me/sessions', as: 'none', status: 401 },
];

const models: Case[] = [
  { name: 'provider: unknown type', method: 'POST', path: '/api/v2/chats/providers', as: 'owner', body: { provider: 'skynet' }, status: 400 },
  { name: 'provider: base_url not a URL', method: 'POST', path: '/api/v2/chats/providers', as: 'owner', body: { provider: 'google', base_url: 'not a url' }, status: 400 },
  { name: 'provider: ftp base_url', method: 'POST', path: '/api/v2/chats/providers', as: 'owner', body: { provider: 'google', base_url: 'ftp://x.example' }, status: 400 },
  { name: 'provider: javascript: base_url', method: 'POST', path: '/api/v2/chats/providers', as: 'owner', body: { provider: 'google', base_url: 'javascript:alert(1)' }, status: 400 },
  { name: 'provider: 129-character name', method: 'POST', path: '/api/v2/chats/providers', as: 'owner', body: { provider: 'google', display_name: 'd'.repeat(129) }, status: 400 },
  { name: 'provider: 5000-character key', method: 'POST', path: '/api/v2/chats/providers', as: 'owner', body: { provider: 'google', api_key: 'k'.repeat(5000) }, status: 400 },
  { name: 'provider: enabled as a string', method: 'POST', path: '/api/v2/chats/providers', as: 'owner', body: { provider: 'google', enabled: 'true' }, status: 400 },
  { name: 'provider: unknown field', method: 'POST', path: '/api/v2/chats/providers', as: 'owner', body: { provider: 'google', region: 'eu' }, status: 400 },
  { name: 'provider: duplicate type', method: 'POST', path: '/api/v2/chats/providers', as: 'owner', body: { provider: 'openai' }, status: 409 },
  { name: 'provider: NUL in the name', method: 'POST', path: '/api/v2/chats/providers', as: 'owner', body: { provider: 'google', display_name: NUL }, status: 400 },
  { name: 'provider: as a member', method: 'POST', path: '/api/v2/chats/providers', as: 'member', body: { provider: 'google' }, status: 403 },
  { name: 'patch provider: bad UUID', method: 'PATCH', path: '/api/v2/chats/providers/123', as: 'owner', body: { enabled: false }, status: 400 },
  { name: 'patch provider: key is a number', method: 'PATCH', path: (i) => `/api/v2/chats/providers/${i.provider}`, as: 'owner', body: { api_key: 42 }, status: 400 },
  { name: 'patch provider: unknown id', method: 'PATCH', path: `/api/v2/chats/providers/${UNKNOWN}`, as: 'owner', body: { enabled: false }, status: 404 },
  { name: 'delete provider: bad UUID', method: 'DELETE', path: '/api/v2/chats/providers/zzz', as: 'owner', status: 400 },
  { name: 'delete provider: unknown id', method: 'DELETE', path: `/api/v2/chats/providers/${UNKNOWN}`, as: 'owner', status: 404 },
  { name: 'config: context_limit 0', method: 'POST', path: '/api/v2/chats/model-configs', as: 'owner', body: { provider: 'openai', model: 'm', context_limit: 0 }, status: 400 },
  { name: 'config: negative context_limit', method: 'POST', path: '/api/v2/chats/model-configs', as: 'owner', body: { provider: 'openai', model: 'm', context_limit: -1 }, status: 400 },
  { name: 'config: huge context_limit', method: 'POST', path: '/api/v2/chats/model-configs', as: 'owner', body: { provider: 'openai', model: 'm', context_limit: 1e12 }, status: 400 },
  { name: 'config: fractional context_limit', method: 'POST', path: '/api/v2/chats/model-configs', as: 'owner', body: { provider: 'openai', model: 'm', context_limit: 1.5 }, status: 400 },
  { name: 'config: threshold 101', method: 'POST', path: '/api/v2/chats/model-configs', as: 'owner', body: { provider: 'openai', model: 'm', context_limit: 9, compression_threshold: 101 }, status: 400 },
  { name: 'config: temperature 5', method: 'POST', path: '/api/v2/chats/model-configs', as: 'owner', body: { provider: 'openai', model: 'm', context_limit: 9, options: { temperature: 5 } }, status: 400 },
  { name: 'config: unknown option', method: 'POST', path: '/api/v2/chats/model-configs', as: 'owner', body: { provider: 'openai', model: 'm', context_limit: 9, options: { seed: 1 } }, status: 400 },
  { name: 'config: provider_options a string', method: 'POST', path: '/api/v2/chats/model-configs', as: 'owner', body: { provider: 'openai', model: 'm', context_limit: 9, options: { provider_options: 'x' } }, status: 400 },
  { name: 'config: negative max_output_tokens', method: 'POST', path: '/api/v2/chats/model-configs', as: 'owner', body: { provider: 'openai', model: 'm', context_limit: 9, options: { max_output_tokens: -5 } }, status: 400 },
  { name: 'config: provider_options 300 deep', method: 'POST', path: '/api/v2/chats/model-configs', as: 'owner', body: { provider: 'openai', model: 'm', context_limit: 9, options: { provider_options: { a: deep(300) } } }, status: 400 },
  { name: 'config: NUL in provider_options', method: 'POST', path: '/api/v2/chats/model-configs', as: 'owner', body: { provider: 'openai', model: 'm', context_limit: 9, options: { provider_options: { a: { b: NUL } } } }, status: 400 },
  { name: 'config: empty model', method: 'POST', path: '/api/v2/chats/model-configs', as: 'owner', body: { provider: 'openai', model: '', context_limit: 9 }, status: 400 },
  { name: 'config: 257-character model', method: 'POST', path: '/api/v2/chats/model-configs', as: 'owner', body: { provider: 'openai', model: 'm'.repeat(257), context_limit: 9 }, status: 400 },
  { name: 'config: provider not configured', method: 'POST', path: '/api/v2/chats/model-configs', as: 'owner', body: { provider: 'anthropic', model: 'm', context_limit: 9 }, status: 400 },
  { name: 'patch config: bad UUID', method: 'PATCH', path: '/api/v2/chats/model-configs/1', as: 'owner', body: { enabled: false }, status: 400 },
  { name: 'patch config: unknown id', method: 'PATCH', path: `/api/v2/chats/model-configs/${UNKNOWN}`, as: 'owner', body: { enabled: false }, status: 404 },
  { name: 'patch config: is_default a string', method: 'PATCH', path: (i) => `/api/v2/chats/model-configs/${i.config}`, as: 'owner', body: { is_default: 'yes' }, status: 400 },
  { name: 'patch config: unknown provider', method: 'PATCH', path: (i) => `/api/v2/chats/model-configs/${i.config}`, as: 'owner', body: { provider: 'google' }, status: 400 },
  { name: 'delete config: bad UUID', method: 'DELETE', path: '/api/v2/chats/model-configs/abc', as: 'owner', status: 400 },
];

const settings: Case[] = [
  { name: 'retention: negative', method: 'PUT', path: '/api/v2/chats/config/retention-days', as: 'owner', body: { retention_days: -1 }, status: 400 },
  { name: 'retention: a billion', method: 'PUT', path: '/api/v2/chats/config/retention-days', as: 'owner', body: { retention_days: 1e9 }, status: 400 },
  { name: 'retention: a string', method: 'PUT', path: '/api/v2/chats/config/retention-days', as: 'owner', body: { retention_days: '30' }, status: 400 },
  { name: 'retention: fractional', method: 'PUT', path: '/api/v2/chats/config/retention-days', as: 'owner', body: { retention_days: 1.5 }, status: 400 },
  { name: 'retention: as a member', method: 'PUT', path: '/api/v2/chats/config/retention-days', as: 'member', body: { retention_days: 3 }, status: 403 },
  { name: 'auto-archive: negative', method: 'PUT', path: '/api/v2/chats/config/auto-archive-days', as: 'owner', body: { auto_archive_days: -1 }, status: 400 },
  { name: 'system prompt: 100,001 characters', method: 'PUT', path: '/api/v2/chats/config/system-prompt', as: 'owner', body: { system_prompt: 's'.repeat(100_001) }, status: 400 },
  { name: 'system prompt: a number', method: 'PUT', path: '/api/v2/chats/config/system-prompt', as: 'owner', body: { system_prompt: 1 }, status: 400 },
  { name: 'system prompt: unknown field', method: 'PUT', path: '/api/v2/chats/config/system-prompt', as: 'owner', body: { system_prompt: 'x', extra: 1 }, status: 400 },
  { name: 'system prompt: NUL', method: 'PUT', path: '/api/v2/chats/config/system-prompt', as: 'owner', body: { system_prompt: NUL }, status: 400 },
];

const agents: Case[] = [
  { name: 'agent: empty name', method: 'POST', path: '/api/v2/agents', as: 'owner', body: { name: '' }, status: 400 },
  { name: 'agent: 129-character name', method: 'POST', path: '/api/v2/agents', as: 'owner', body: { name: 'a'.repeat(129) }, status: 400 },
  { name: 'agent: name is a number', method: 'POST', path: '/api/v2/agents', as: 'owner', body: { name: 1 }, status: 400 },
  { name: 'agent: as a member', method: 'POST', path: '/api/v2/agents', as: 'member', body: { name: 'x' }, status: 403 },
  { name: 'rotate: bad UUID', method: 'POST', path: '/api/v2/agents/nope/token', as: 'owner', status: 400 },
  { name: 'rotate: unknown agent', method: 'POST', path: `/api/v2/agents/${UNKNOWN}/token`, as: 'owner', status: 404 },
  { name: 'rotate: as a member', method: 'POST', path: (i) => `/api/v2/agents/${i.agent}/token`, as: 'member', status: 403 },
  { name: 'delete agent: bad UUID', method: 'DELETE', path: '/api/v2/agents/nope', as: 'owner', status: 400 },
  { name: 'delete agent: unknown agent', method: 'DELETE', path: `/api/v2/agents/${UNKNOWN}`, as: 'owner', status: 404 },
  { name: 'push: resources not a list', method: 'PUT', path: '/api/v2/agents/me/context', as: 'agent', body: { resources: {} }, status: 400 },
  { name: 'push: unknown body_kind', method: 'PUT', path: '/api/v2/agents/me/context', as: 'agent', body: { resources: [{ ...resource, body_kind: 'virus' }] }, status: 400 },
  { name: 'push: ok without a body', method: 'PUT', path: '/api/v2/agents/me/context', as: 'agent', body: { resources: [{ ...resource, body: undefined }] }, status: 400 },
  { name: 'push: 501 resources', method: 'PUT', path: '/api/v2/agents/me/context', as: 'agent', body: { resources: Array.from({ length: 501 }, (_, n) => ({ ...resource, source: `r${n}` })) }, status: 400 },
  { name: 'push: duplicate sources', method: 'PUT', path: '/api/v2/agents/me/context', as: 'agent', body: { resources: [resource, resource] }, status: 400 },
  { name: 'push: 1025-character source', method: 'PUT', path: '/api/v2/agents/me/context', as: 'agent', body: { resources: [{ ...resource, source: 's'.repeat(1025) }] }, status: 400 },
  { name: 'push: NUL in a body', method: 'PUT', path: '/api/v2/agents/me/context', as: 'agent', body: { resources: [{ ...resource, body: { x: NUL } }] }, status: 400 },
  { name: 'push: 5 MB body', method: 'PUT', path: '/api/v2/agents/me/context', as: 'agent', body: { resources: [{ ...resource, body: BIG }] }, status: 413 },
  { name: 'push: no token', method: 'PUT', path: '/api/v2/agents/me/context', as: 'none', body: { resources: [] }, status: 401 },
  { name: "push: a user's token", method: 'PUT', path: '/api/v2/agents/me/context', as: 'member', body: { resources: [] }, status: 401 },
];

describe('bad input on the admin and account routes', () => {
  let env: Env;
  let db: Db;
  let ids: Ids;
  let tokens: Record<'owner' | 'member' | 'agent', string>;
  let tables: Record<string, null>;

  beforeAll(async () => {
    const w = await freshWorld();
    env = w.env;
    db = w.db;
    const owner = await makeOwner({ env });
    const member = await makeUser({ env });
    const post = async (path: string, body: unknown) => {
      const r = await call('POST', path, { token: owner.token, env, body });
      expect(r.status, r.text).toBe(201);
      return z.looseObject({ id: z.uuid() }).parse(r.body);
    };
    const provider = await post('/api/v2/chats/providers', { provider: 'openai' });
    const config = await post('/api/v2/chats/model-configs', { provider: 'openai', model: 'm', context_limit: 9 });
    const agent = z.object({ id: z.uuid(), token: z.string() }).parse(await post('/api/v2/agents', { name: 'bot' }));
    ids = { owner: owner.user.id, member: member.user.id, provider: provider.id, config: config.id, agent: agent.id };
    tokens = { owner: owner.token, member: member.token, agent: agent.token };
    // First uses record last_used_at (once an hour): done now, so the cases themselves must write nothing.
    for (const t of [owner.token, member.token]) expect((await call('GET', '/api/v2/users/me', { token: t, env })).status).toBe(200);
    tables = await allTables(db);
  });

  const all = [...users, ...credentials, ...models, ...settings, ...agents];
  it('has a case for every admin and account route', () => {
    expect(all.length).toBeGreaterThanOrEqual(100);
  });

  it.each(all.map((c) => [c.name, c] as const))('%s', async (_name, c) => {
    const before = await fingerprint(db, tables);
    await expectRefused(c, ids, tokens, env);
    expect(await fingerprint(db, tables)).toEqual(before);
  });
});
