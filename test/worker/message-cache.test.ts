import { describe, expect, it } from 'vitest';
import { MessageCache } from '../../durable-objects/room/message-cache';
import type { Message } from '../../functions/core/chats';

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

  it('is bounded by bytes too: maximum-size messages push the oldest out, the newest always stays', () => {
    const big = (id: number): Message => ({ ...msg(id), content: [{ type: 'text', text: 'x'.repeat(200_000) }] });
    const c = new MessageCache(256, 1_000_000);
    c.append([big(1), big(2)], true);
    expect(ids(c.history())).toEqual([1, 2]);
    c.append([big(3)]);
    // Each is ~400 kB (two bytes a character): two fit, the third pushes the first out, and the chat is no longer whole.
    expect(ids(c.after(1))).toEqual([2, 3]);
    expect(c.history()).toBeNull();
    expect(c.bytes).toBeLessThanOrEqual(1_000_000);
    c.append([big(4), big(5), big(6)]);
    expect(ids(c.after(4))).toEqual([5, 6]);
    expect(c.after(3)).toBeNull();
    // A message larger than the budget on its own is still kept: it is the newest.
    const tiny = new MessageCache(256, 1_000);
    tiny.append([big(7)]);
    expect(ids(tiny.after(6))).toEqual([7]);
    tiny.fill(0, [msg(8), big(9)]);
    expect(ids(tiny.after(8))).toEqual([9]);
    tiny.clear();
    expect(tiny.bytes).toBe(0);
  });
});
