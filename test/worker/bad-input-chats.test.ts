/**
 * Bad input on the routes served through Durable Objects (chats, messages, queue, stream, context; Web Push). Those
 * objects use the suites' shared database, so this runs there, with a user and a chat of its own, and checks that
 * none of the rows that user could reach changes; every case is a 4xx with the standard error body.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import type { Db } from '../../functions/core/db';
import { expectRefused, fingerprint, type BadCase } from './bad-input';
import { call, makeUser, messagesOf, startChat, testDb, testEnv } from './helpers';

interface Ids {
  chat: string;
  message: number;
}
type Case = BadCase<Ids>;

const UNKNOWN = '00000000-0000-4000-8000-00000000abcd';
const BIG = 'x'.repeat(5 * 1024 * 1024);
const parts = (n: number) => Array.from({ length: n }, () => ({ type: 'text', text: 'x' }));
const chat = (suffix = '') => (i: Ids) => `/api/v2/chats/${i.chat}${suffix}`;
const keys = { auth_key: 'AAAAAAAAAAAAAAAAAAAAAA', p256dh_key: 'A'.repeat(87) };

const chats: Case[] = [
  { name: 'create: content is a number', method: 'POST', path: '/api/v2/chats', as: 'member', body: { content: 123 }, status: 400 },
  { name: 'create: no parts', method: 'POST', path: '/api/v2/chats', as: 'member', body: { content: [] }, status: 400 },
  { name: 'create: 10,000 parts', method: 'POST', path: '/api/v2/chats', as: 'member', body: { content: parts(10_000) }, status: 400 },
  { name: 'create: 200,001 characters', method: 'POST', path: '/api/v2/chats', as: 'member', body: { content: 'x'.repeat(200_001) }, status: 400 },
  { name: 'create: 5 MB body', method: 'POST', path: '/api/v2/chats', as: 'member', body: { content: BIG }, status: 413 },
  { name: 'create: model_config_id not a UUID', method: 'POST', path: '/api/v2/chats', as: 'member', body: { content: 'hi', model_config_id: 'nope' }, status: 400 },
  { name: 'create: unknown model config', method: 'POST', path: '/api/v2/chats', as: 'member', body: { content: 'hi', model_config_id: UNKNOWN }, status: 400 },
  { name: 'create: 51 labels', method: 'POST', path: '/api/v2/chats', as: 'member', body: { content: 'hi', labels: Object.fromEntries(parts(51).map((_, n) => [`k${n}`, 'v'])) }, status: 400 },
  { name: 'create: label value a number', method: 'POST', path: '/api/v2/chats', as: 'member', body: { content: 'hi', labels: { a: 1 } }, status: 400 },
  { name: 'create: 257-character title', method: 'POST', path: '/api/v2/chats', as: 'member', body: { content: 'hi', title: 't'.repeat(257) }, status: 400 },
  { name: 'create: agent_id not a UUID', method: 'POST', path: '/api/v2/chats', as: 'member', body: { content: 'hi', agent_id: 'x' }, status: 400 },
  { name: 'create: unknown agent', method: 'POST', path: '/api/v2/chats', as: 'member', body: { content: 'hi', agent_id: UNKNOWN }, status: 400 },
  { name: 'create: unknown field', method: 'POST', path: '/api/v2/chats', as: 'member', body: { content: 'hi', stream: true }, status: 400 },
  { name: 'create: an image part', method: 'POST', path: '/api/v2/chats', as: 'member', body: { content: [{ type: 'image', url: 'x' }] }, status: 400 },
  { name: 'create: NUL in the content', method: 'POST', path: '/api/v2/chats', as: 'member', body: { content: 'a\u0000b' }, status: 400 },
  { name: 'create: unpaired surrogate', method: 'POST', path: '/api/v2/chats', as: 'member', raw: '{"content":"\\udc00"}', status: 400 },
  { name: 'create: not JSON', method: 'POST', path: '/api/v2/chats', as: 'member', raw: 'hello', status: 400 },
  { name: 'create: text/plain body', method: 'POST', path: '/api/v2/chats', as: 'member', raw: 'hello', headers: { 'content-type': 'text/plain' }, status: 415 },
  { name: 'create: anonymous', method: 'POST', path: '/api/v2/chats', as: 'none', body: { content: 'hi' }, status: 401 },
  { name: 'list: limit 0', method: 'GET', path: '/api/v2/chats?limit=0', as: 'member', status: 400 },
  { name: 'list: archived=maybe', method: 'GET', path: '/api/v2/chats?archived=maybe', as: 'member', status: 400 },
  { name: 'list: negative offset', method: 'GET', path: '/api/v2/chats?offset=-1', as: 'member', status: 400 },
  { name: 'list: huge offset', method: 'GET', path: '/api/v2/chats?offset=99999999999', as: 'member', status: 400 },
  { name: 'get: bad UUID', method: 'GET', path: '/api/v2/chats/not-a-uuid', as: 'member', status: 400 },
  { name: 'get: unknown chat', method: 'GET', path: `/api/v2/chats/${UNKNOWN}`, as: 'member', status: 404 },
  { name: 'patch: archived a string', method: 'PATCH', path: chat(), as: 'member', body: { archived: 'yes' }, status: 400 },
  { name: 'patch: label value a number', method: 'PATCH', path: chat(), as: 'member', body: { labels: { a: 1 } }, status: 400 },
  { name: 'patch: unknown field', method: 'PATCH', path: chat(), as: 'member', body: { owner_id: UNKNOWN }, status: 400 },
  { name: 'patch: NUL in the title', method: 'PATCH', path: chat(), as: 'member', body: { title: 'a\u0000' }, status: 400 },
  { name: 'patch: unknown chat', method: 'PATCH', path: `/api/v2/chats/${UNKNOWN}`, as: 'member', body: { title: 'x' }, status: 404 },
  { name: 'delete: bad UUID', method: 'DELETE', path: '/api/v2/chats/123', as: 'member', status: 400 },
  { name: 'delete: unknown chat', method: 'DELETE', path: `/api/v2/chats/${UNKNOWN}`, as: 'member', status: 404 },
];

const messages: Case[] = [
  { name: 'messages: negative after_id', method: 'GET', path: chat('/messages?after_id=-1'), as: 'member', status: 400 },
  { name: 'messages: limit 201', method: 'GET', path: chat('/messages?limit=201'), as: 'member', status: 400 },
  { name: 'messages: before_id not a number', method: 'GET', path: chat('/messages?before_id=abc'), as: 'member', status: 400 },
  { name: 'messages: 20-digit after_id', method: 'GET', path: chat('/messages?after_id=99999999999999999999'), as: 'member', status: 400 },
  { name: 'post: busy_behavior unknown', method: 'POST', path: chat('/messages'), as: 'member', body: { content: 'hi', busy_behavior: 'wait' }, status: 400 },
  { name: 'post: content null', method: 'POST', path: chat('/messages'), as: 'member', body: { content: null }, status: 400 },
  { name: 'post: 101 parts', method: 'POST', path: chat('/messages'), as: 'member', body: { content: parts(101) }, status: 400 },
  { name: 'post: blank content', method: 'POST', path: chat('/messages'), as: 'member', body: { content: '   ' }, status: 400 },
  { name: 'post: 5 MB body', method: 'POST', path: chat('/messages'), as: 'member', body: { content: BIG }, status: 413 },
  { name: 'post: unknown chat', method: 'POST', path: `/api/v2/chats/${UNKNOWN}/messages`, as: 'member', body: { content: 'hi' }, status: 404 },
  { name: 'edit: message id 0', method: 'PATCH', path: chat('/messages/0'), as: 'member', body: { content: 'x' }, status: 400 },
  { name: 'edit: message id not a number', method: 'PATCH', path: chat('/messages/abc'), as: 'member', body: { content: 'x' }, status: 400 },
  { name: 'edit: empty content', method: 'PATCH', path: (i) => `/api/v2/chats/${i.chat}/messages/${i.message}`, as: 'member', body: { content: '' }, status: 400 },
  { name: 'edit: unknown field', method: 'PATCH', path: (i) => `/api/v2/chats/${i.chat}/messages/${i.message}`, as: 'member', body: { content: 'x', role: 'system' }, status: 400 },
  { name: 'queue: delete, bad UUID', method: 'DELETE', path: chat('/queue/nope'), as: 'member', status: 400 },
  { name: 'queue: promote, bad UUID', method: 'POST', path: chat('/queue/nope/promote'), as: 'member', status: 400 },
  { name: 'interrupt: bad UUID', method: 'POST', path: '/api/v2/chats/nope/interrupt', as: 'member', status: 400 },
  { name: 'stream: after_id not a number', method: 'GET', path: chat('/stream?after_id=x'), as: 'member', headers: { upgrade: 'websocket' }, status: 400 },
  { name: 'stream: another origin', method: 'GET', path: chat('/stream'), as: 'member', headers: { upgrade: 'websocket', origin: 'https://evil.example' }, status: 403 },
  { name: 'stream-stats: as a member', method: 'GET', path: chat('/stream-stats'), as: 'member', status: 403 },
  { name: 'context: bad UUID', method: 'GET', path: '/api/v2/chats/nope/context', as: 'member', status: 400 },
  { name: 'context: re-pin without an agent', method: 'PUT', path: chat('/context'), as: 'member', status: 409 },
];

const webpush: Case[] = [
  { name: 'subscribe: not a URL', method: 'POST', path: '/api/v2/users/me/webpush/subscription', as: 'member', body: { endpoint: 'not a url', ...keys }, status: 400 },
  { name: 'subscribe: endpoint a number', method: 'POST', path: '/api/v2/users/me/webpush/subscription', as: 'member', body: { endpoint: 1, ...keys }, status: 400 },
  { name: 'subscribe: bad auth key', method: 'POST', path: '/api/v2/users/me/webpush/subscription', as: 'member', body: { endpoint: `${testEnv.PUSH_SERVER_URL}/push/201/x`, ...keys, auth_key: '!!' }, status: 400 },
  { name: 'subscribe: p256dh of the wrong length', method: 'POST', path: '/api/v2/users/me/webpush/subscription', as: 'member', body: { endpoint: `${testEnv.PUSH_SERVER_URL}/push/201/x`, ...keys, p256dh_key: 'AAAA' }, status: 400 },
  { name: 'subscribe: unknown field', method: 'POST', path: '/api/v2/users/me/webpush/subscription', as: 'member', body: { endpoint: `${testEnv.PUSH_SERVER_URL}/push/201/x`, ...keys, expirationTime: null }, status: 400 },
  { name: 'subscribe: 3000-character endpoint', method: 'POST', path: '/api/v2/users/me/webpush/subscription', as: 'member', body: { endpoint: `https://fcm.googleapis.com/${'x'.repeat(3000)}`, ...keys }, status: 400 },
  { name: 'unsubscribe: no endpoint', method: 'DELETE', path: '/api/v2/users/me/webpush/subscription', as: 'member', body: {}, status: 400 },
  { name: 'unsubscribe: empty endpoint', method: 'DELETE', path: '/api/v2/users/me/webpush/subscription', as: 'member', body: { endpoint: '' }, status: 400 },
  { name: 'settings: enabled a string', method: 'PUT', path: '/api/v2/users/me/webpush/settings', as: 'member', body: { enabled: 'no' }, status: 400 },
  { name: 'settings: empty body', method: 'PUT', path: '/api/v2/users/me/webpush/settings', as: 'member', body: {}, status: 400 },
];

describe('bad input on the chat and Web Push routes', () => {
  let db: Db;
  let ids: Ids;
  let token: string;
  let userId: string;
  const ofChats = 't.chat_id IN (SELECT id FROM chats WHERE owner_id = $1::uuid)';
  const tables = {
    users: 't.id = $1::uuid',
    api_keys: 't.user_id = $1::uuid',
    chats: 't.owner_id = $1::uuid',
    chat_messages: ofChats,
    chat_queued_messages: ofChats,
    chat_summaries: ofChats,
    chat_context_resources: ofChats,
    webpush_subscriptions: 't.user_id = $1::uuid',
  };

  beforeAll(async () => {
    const u = await makeUser();
    token = u.token;
    userId = u.user.id;
    const c = await startChat(token, 'hello');
    const first = (await messagesOf(c.id, token)).find((m) => m.role === 'user');
    ids = { chat: c.id, message: first?.id ?? 0 };
    expect(ids.message).toBeGreaterThan(0);
    expect((await call('GET', '/api/v2/users/me', { token })).status).toBe(200); // records last_used_at now
    db = testDb();
  });

  const all = [...chats, ...messages, ...webpush];
  it('covers the chat routes', () => {
    expect(all.length).toBeGreaterThanOrEqual(60);
  });

  it.each(all.map((c) => [c.name, c] as const))('%s', async (_name, c) => {
    const before = await fingerprint(db, tables, userId);
    await expectRefused(c, ids, { owner: '', member: token, agent: '' });
    const after = await fingerprint(db, tables, userId);
    expect(after).toEqual(before);
  });
});
