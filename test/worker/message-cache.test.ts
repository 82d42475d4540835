import { describe, expect, it } from 'vitest';
import { MessageCache } from '../../durable-objects/message-cache';
import type { Message } from '../../functions/services/chats';

const msg = (id: number): Message => ({
  id,
  chat_id: 'c',
  role: 'user',
  content: [{ type: 'text', text: String(id) }],
  model_config_id: null,
  created_at: new Date(0).toISOString(),
});
const ids = (ms: Message[] | null) => ms?.map((m) => m.id) ?? null;

describe('MessageCache', () => {
  it('a cold cache knows nothing; appends cover from just before the first one', () => {
    const c = new MessageCache(4);
    expect(c.after(0)).toBeNull();
    c.append([msg(10), msg(12)]);
    expect(ids(c.after(9))).toEqual([10, 12]);
    expect(ids(c.after(10))).toEqual([12]);
    expect(c.after(8)).toBeNull(); // 9 or earlier may hold messages of this chat we never saw
    expect(c.history()).toBeNull();
  });

  it('a chat created by this object is whole: any after_id is served, until trimming', () => {
    const c = new MessageCache(3);
    c.append([msg(5), msg(6)], true);
    expect(ids(c.after(0))).toEqual([5, 6]);
    expect(ids(c.history())).toEqual([5, 6]);
    c.append([msg(7), msg(9)]);
    expect(c.size).toBe(3);
    expect(c.history()).toBeNull();
    expect(c.after(4)).toBeNull();
    expect(ids(c.after(5))).toEqual([6, 7, 9]);
  });

  it('fill merges a Postgres read and keeps the newest, bounded', () => {
    const c = new MessageCache(3);
    c.append([msg(20)]);
    c.fill(0, [msg(1), msg(2), msg(3), msg(20)]);
    expect(c.size).toBe(3);
    expect(ids(c.after(2))).toEqual([3, 20]);
    expect(ids(c.after(1))).toEqual([2, 3, 20]); // 1 was trimmed: complete for ids > 1
    expect(c.after(0)).toBeNull();
    c.replace([msg(1)]);
    expect(ids(c.after(0))).toEqual([1]);
    c.clear();
    expect(c.after(0)).toBeNull();
  });
});
