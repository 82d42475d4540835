/**
 * Authorization in the chat object, proven rather than trusted (as coder's dbauthz accounting check does): every
 * method the object exposes over RPC has a rule in durable-objects/room/guard.ts, and every method whose rule needs an
 * actor refuses a stranger before its body runs, leaving the chat as it was.
 */
import { DurableObject } from 'cloudflare:workers';
import { describe, expect, it } from 'vitest';
import { ChatRoom } from '../../durable-objects/chat-room';
import { RULES } from '../../durable-objects/room/guard';
import type { ChatActor } from '../../functions/core/access';
import { makeUser, messagesOf, roomOf, startChat, testDb } from './helpers';

/** The runtime's own entry points: the stream upgrade (which applies `STREAM_RULE` itself), sockets and the alarm. */
const RUNTIME = ['fetch', 'alarm', 'webSocketMessage', 'webSocketClose', 'webSocketError'];

/** Every name the object answers over RPC: the methods and accessors of its prototype chain, below DurableObject. */
function rpcNames(): string[] {
  const names = new Set<string>();
  for (let p: object | null = ChatRoom.prototype; p && p !== DurableObject.prototype; p = Object.getPrototypeOf(p) as object | null) {
    for (const n of Object.getOwnPropertyNames(p)) if (n !== 'constructor') names.add(n);
  }
  return [...names].sort();
}

const hasRule = (n: string): n is keyof typeof RULES => Object.hasOwn(RULES, n);

describe('the chat object guard', () => {
  it('declares a rule for every method the object exposes over RPC', () => {
    const unruled = rpcNames().filter((n) => !hasRule(n) && !RUNTIME.includes(n));
    expect(unruled).toEqual([]);
    // And the table names nothing the object does not have (a rule for a renamed method would guard nothing).
    expect(Object.keys(RULES).filter((n) => !rpcNames().includes(n))).toEqual([]);
  });

  it('refuses a stranger on every read and write method with 404, before the method runs, changing nothing', async () => {
    const owner = await makeUser();
    const stranger = await makeUser();
    const chat = await startChat(owner.token, 'mine alone');
    const stub = roomOf(chat.id);
    await stub.idle();
    const before = await messagesOf(chat.id, owner.token);
    const actor: ChatActor = { userId: stranger.user.id, roles: ['member'] };
    // Arguments are plausible for each method; the guard must answer before any of them is looked at.
    const attempts: Record<string, () => Promise<unknown>> = {
      get: () => stub.get(actor),
      messages: () => stub.messages(actor, { limit: 10 }),
      listQueue: () => stub.listQueue(actor),
      tools: () => stub.tools(actor),
      mintTicket: () => stub.mintTicket(actor, 'k', null),
      postMessage: () => stub.postMessage(actor, { content: [{ type: 'text', text: 'x' }], modelConfigId: null, busyBehavior: 'interrupt', idempotencyKey: null }),
      editMessage: () => stub.editMessage(actor, { messageId: before[0]?.id ?? 1, content: [{ type: 'text', text: 'x' }] }),
      interrupt: () => stub.interrupt(actor),
      deleteQueued: () => stub.deleteQueued(actor, crypto.randomUUID()),
      promoteQueued: () => stub.promoteQueued(actor, crypto.randomUUID()),
      decideToolCall: () => stub.decideToolCall(actor, { toolCallId: 'c', decision: 'approve', reason: null }),
      updateMeta: () => stub.updateMeta(actor, { title: 'taken' }),
      deleteChat: () => stub.deleteChat(actor),
      repinContext: () => stub.repinContext(actor),
      owned: () => stub.owned(actor),
      fork: () => stub.fork(actor, { id: crypto.randomUUID(), messageId: before[0]?.id ?? 1 }),
      regenerate: () => stub.regenerate(actor, { modelConfigId: null }),
      exportChat: () => stub.exportChat(actor),
    };
    const guarded = Object.entries(RULES).filter(([, rule]) => rule === 'read' || rule === 'write').map(([n]) => n);
    expect(Object.keys(attempts).sort()).toEqual(guarded.sort());
    for (const [name, attempt] of Object.entries(attempts)) {
      expect(await attempt(), name).toEqual({ ok: false, status: 404, message: 'Resource not found or you do not have access to this resource' });
    }
    // The chat is as it was: its messages, its title, and it still exists for its owner.
    expect(await messagesOf(chat.id, owner.token)).toEqual(before);
    const db = testDb();
    const row = await db.query('SELECT title FROM chats WHERE id = $1', [chat.id]);
    await db.close();
    expect(row.rows).toEqual([{ title: chat.title }]);
  });

  it('lets a viewer call every read method and refuses every write method with 403, changing nothing', async () => {
    const owner = await makeUser();
    const viewer = await makeUser();
    const chat = await startChat(owner.token, 'shared to read');
    const stub = roomOf(chat.id);
    const db = testDb();
    await db.query('INSERT INTO chat_acl (chat_id, user_id) VALUES ($1, $2)', [chat.id, viewer.user.id]);
    await stub.accessChanged(null);
    const before = await messagesOf(chat.id, owner.token);
    const actor: ChatActor = { userId: viewer.user.id, roles: ['member'] };
    const reads: Record<string, () => Promise<unknown>> = {
      get: () => stub.get(actor),
      messages: () => stub.messages(actor, { limit: 10 }),
      listQueue: () => stub.listQueue(actor),
      tools: () => stub.tools(actor),
      mintTicket: () => stub.mintTicket(actor, 'k', null),
      // A viewer's fork is a new chat of their own; the shared chat does not change.
      fork: () => stub.fork(actor, { id: crypto.randomUUID(), messageId: before[0]?.id ?? 1 }),
      exportChat: () => stub.exportChat(actor),
    };
    const writes: Record<string, () => Promise<unknown>> = {
      postMessage: () => stub.postMessage(actor, { content: [{ type: 'text', text: 'x' }], modelConfigId: null, busyBehavior: 'interrupt', idempotencyKey: null }),
      editMessage: () => stub.editMessage(actor, { messageId: before[0]?.id ?? 1, content: [{ type: 'text', text: 'x' }] }),
      interrupt: () => stub.interrupt(actor),
      deleteQueued: () => stub.deleteQueued(actor, crypto.randomUUID()),
      promoteQueued: () => stub.promoteQueued(actor, crypto.randomUUID()),
      decideToolCall: () => stub.decideToolCall(actor, { toolCallId: 'c', decision: 'approve', reason: null }),
      updateMeta: () => stub.updateMeta(actor, { title: 'taken' }),
      deleteChat: () => stub.deleteChat(actor),
      repinContext: () => stub.repinContext(actor),
      owned: () => stub.owned(actor),
      regenerate: () => stub.regenerate(actor, { modelConfigId: null }),
    };
    expect(Object.keys(reads).sort()).toEqual(Object.entries(RULES).filter(([, r]) => r === 'read').map(([n]) => n).sort());
    expect(Object.keys(writes).sort()).toEqual(Object.entries(RULES).filter(([, r]) => r === 'write').map(([n]) => n).sort());
    for (const [name, read] of Object.entries(reads)) expect(await read(), name).toMatchObject({ ok: true });
    expect(await stub.get(actor)).toMatchObject({ ok: true, value: { id: chat.id, access: 'viewer' } });
    for (const [name, write] of Object.entries(writes)) {
      expect(await write(), name).toEqual({ ok: false, status: 403, message: 'This chat is shared with you to read: only its owner can change it.' });
    }
    expect(await messagesOf(chat.id, owner.token)).toEqual(before);
    const row = await db.query('SELECT title FROM chats WHERE id = $1', [chat.id]);
    await db.close();
    expect(row.rows).toEqual([{ title: chat.title }]);
  });

  it('answers a stranger replaying a creation on a taken chat id with 409, never with the chat', async () => {
    const owner = await makeUser();
    const stranger = await makeUser();
    const chat = await startChat(owner.token, 'first');
    await roomOf(chat.id).idle();
    const r = await roomOf(chat.id).create(
      { userId: stranger.user.id, roles: ['member'] },
      { id: chat.id, title: 't', titleSource: 'owner', labels: {}, agentId: null, modelConfigId: null, messages: [{ role: 'user', content: [{ type: 'text', text: 'x' }] }], idempotencyKey: 'k' },
    );
    expect(r).toMatchObject({ ok: false, status: 409 });
  });
});
