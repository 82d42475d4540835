// Callbacks given to page.evaluate run in the browser: they use DOM types.
/// <reference lib="dom" />
/**
 * The web UI's conversation tools and search results, in chromium: Fork opens a new chat holding the messages up to
 * the one forked; Regenerate replaces the last answer with a new one; a search result opens its chat at the message
 * (loaded from the page around it, far from the newest page), on screen and marked. Its own stack and owner.
 */
import type { Browser, BrowserContext } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LocalStack } from '../../scripts/lib/scaletest-stack.mjs';
import { insertLongChats, newChat, newContext, startBrowserAndStack, stopBrowserAndStack } from './web-helpers.js';

const OWNER = { email: 'tools@example.com', username: 'tools', password: 'conversation tools 1' };

let stack: LocalStack;
let browser: Browser;
let owner: BrowserContext;
let ownerId = '';

beforeAll(async () => {
  ({ browser, stack } = await startBrowserAndStack());
  owner = await newContext(browser, { baseURL: stack.url, viewport: { width: 1280, height: 800 } });
  const r = await owner.request.post('/api/v2/users/first', { data: OWNER });
  expect(r.status()).toBe(201);
  ownerId = ((await r.json()) as { user: { id: string } }).user.id;
}, 180_000);

afterAll(async () => {
  await stopBrowserAndStack(browser, stack);
}, 90_000);

describe('web UI: conversation tools', () => {
  it('Fork opens a new chat up to that message; Regenerate replaces the last answer', async () => {
    const page = await owner.newPage();
    await newChat(page, 'Fork and regenerate me');
    const answer = page.locator('article.msg-assistant:not(.streaming)');
    await answer.getByText('Echo: Fork and regenerate me').waitFor();
    const firstAnswerId = await answer.first().getAttribute('data-message-id');
    const original = page.url();

    // Regenerate: the answer is removed as an edit removes, and a new one (a new id) runs.
    await answer.getByRole('button', { name: 'Regenerate' }).click();
    await page.locator(`article.msg-assistant:not([data-message-id="${firstAnswerId}"]):not(.streaming)`).getByText('Echo: Fork and regenerate me').waitFor();
    await page.locator(`article[data-message-id="${firstAnswerId}"]`).waitFor({ state: 'detached' });
    expect(await answer.count()).toBe(1);

    // Fork at the user message: a new chat with that message only.
    const user = page.locator('article.msg-user');
    await user.getByRole('button', { name: 'Fork' }).click();
    await page.waitForURL((u) => /\/chats\/[0-9a-f-]{36}$/.test(u.pathname) && u.href !== original);
    await page.locator('article.msg-user').getByText('Fork and regenerate me').waitFor();
    expect(await page.locator('article.msg-assistant').count()).toBe(0);
    const forkId = page.url().split('/').pop() ?? '';
    const r = await owner.request.get(`/api/v2/chats/${forkId}`);
    const fork = (await r.json()) as { forked_from: { chat_id: string } | null };
    expect(fork.forked_from?.chat_id).toBe(original.split('/').pop());
    await page.close();
  });

  it('a search result opens its chat at the message, loaded around it, on screen and marked', async () => {
    const [chat] = await insertLongChats(stack.pgUrl, ownerId, ['Long searchable chat'], 300);
    const found = await owner.request.get(`/api/v2/chats/search?q=${encodeURIComponent('"number 11 with"')}`);
    const { results } = (await found.json()) as { results: { chat_id: string; message_id: number }[] };
    expect(results.map((x) => x.chat_id)).toEqual([chat?.id]);
    const target = results[0]?.message_id ?? -1;

    const page = await owner.newPage();
    await page.goto('/');
    await page.getByRole('searchbox').fill('"number 11 with"');
    const hit = page.getByRole('list', { name: 'Matching messages' }).getByRole('link');
    await hit.first().waitFor();
    expect(await hit.count()).toBe(1);
    expect(await hit.locator('mark').allInnerTexts()).toEqual(['number', '11', 'with']);
    await hit.click();
    const marked = page.locator(`.msg-slot.marked article[data-message-id="${target}"]`);
    await marked.waitFor();
    await expect.poll(() => marked.isVisible()).toBe(true);
    const inView = await marked.evaluate((el) => {
      const box = el.getBoundingClientRect();
      return box.top >= 0 && box.bottom <= window.innerHeight;
    });
    expect(inView).toBe(true);
    // The history is contiguous from the page around it to the newest message.
    await page.locator(`article[data-message-id="${chat?.lastId ?? -1}"]`).waitFor({ state: 'attached' });
    await page.close();
  });
});
