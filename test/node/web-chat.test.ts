// Callbacks given to page.evaluate run in the browser: they use DOM types.
/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
/**
 * The web UI as a daily driver, in chromium (issue 25): one test per defect found when it was tried as a new user
 * would. Its own stack and owner (made over the API), so it runs beside web.test.ts. Waits are on gates and DOM
 * states, never sleeps. Prints the Send → first token median (10 sends).
 */
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LocalStack } from '../../scripts/lib/scaletest-stack.mjs';
import { assistantTexts, gates, insertLongChats, newChat, statusBadge, streaming, waitOrTell, watchConsole, newContext, startBrowserAndStack, stopBrowserAndStack } from './web-helpers.js';

const OWNER = { email: 'daily@example.com', username: 'daily', password: 'daily driver 1' };

let stack: LocalStack;
let browser: Browser;
let owner: BrowserContext;
let ownerId = '';
let gate: ReturnType<typeof gates>;

beforeAll(async () => {
  ({ browser, stack } = await startBrowserAndStack());
  gate = gates(stack.mockUrl);
  owner = await newContext(browser, { baseURL: stack.url, viewport: { width: 1280, height: 800 } });
  const r = await owner.request.post('/api/v2/users/first', { data: OWNER });
  expect(r.status()).toBe(201);
  ownerId = ((await r.json()) as { user: { id: string } }).user.id;
}, 180_000);

afterAll(async () => {
  await stopBrowserAndStack(browser, stack);
}, 90_000);

const answers = (page: Page) => page.locator('article.msg-assistant:not(.streaming)');

describe('web UI as a daily driver: the chat', () => {
  it('1. the chat list has no 100-chat wall: "Load more" reaches the oldest of 110; rows are compact, with a menu', async () => {
    const titles = Array.from({ length: 110 }, (_, i) => `Paged chat ${String(i).padStart(3, '0')}`);
    await insertLongChats(stack.pgUrl, ownerId, titles, 0);
    const page = await owner.newPage();
    await page.goto('/');
    const rows = page.locator('.sidebar .rows > li');
    await rows.nth(49).waitFor();
    expect(await rows.count()).toBe(50);
    await page.getByRole('button', { name: 'Load more chats' }).click();
    await rows.nth(99).waitFor();
    await page.getByRole('button', { name: 'Load more chats' }).click();
    await page.locator('.sidebar li', { hasText: 'Paged chat 000' }).waitFor();
    expect(await rows.count()).toBe(110);
    await page.getByRole('button', { name: 'Load more chats' }).waitFor({ state: 'detached' });
    // Compact: at least 18 rows fit in 800 px, and a row's actions are behind its menu.
    const h = await rows.first().evaluate((e) => e.getBoundingClientRect().height);
    expect(h).toBeLessThanOrEqual(800 / 18);
    await rows.first().getByRole('button', { name: /^Actions for/ }).click();
    expect(await page.getByRole('menuitem').allInnerTexts()).toEqual(['Rename', 'Archive', 'Export JSON', 'Export Markdown', 'Delete…']);
    await page.keyboard.press('Escape');
    await page.getByRole('menu').waitFor({ state: 'detached' });
    // The search box (the search feature's slot) is there.
    expect(await page.getByRole('searchbox').count()).toBe(1);
    await page.close();
  });

  it('2 and 12. Enter sends, Shift+Enter adds a line; an edit names what it removes, Escape cancels it', async () => {
    const page = await owner.newPage();
    await page.goto('/');
    expect(await page.title()).toBe('New chat · chatd-edge');
    // The new-chat box has the focus and says how to send.
    await page.waitForFunction(() => document.activeElement?.tagName === 'TEXTAREA');
    await page.keyboard.type('Original question');
    await page.getByText('Enter sends · Shift+Enter adds a line').first().waitFor();
    await page.keyboard.press('Enter');
    await page.waitForURL(/\/chats\//);
    await answers(page).first().waitFor();
    // Focus is in the composer when the chat opens.
    expect(await page.evaluate(() => document.activeElement?.id)).toBe('composer-input');
    await page.keyboard.type('Second');
    await page.keyboard.press('Shift+Enter');
    await page.keyboard.type('question');
    expect(await page.getByLabel('Message', { exact: true }).inputValue()).toBe('Second\nquestion');
    await page.keyboard.press('Enter');
    await page.waitForFunction(() => document.querySelectorAll('article.msg-assistant:not(.streaming)').length === 2);
    await statusBadge(page).getByText('idle').waitFor();
    // The box empties when the POST's answer comes back. On a loaded machine the turn's frames can arrive first, so
    // wait for that event rather than read the box at once.
    await page.waitForFunction(() => (document.getElementById('composer-input') as HTMLTextAreaElement | null)?.value === '');

    const first = page.locator('article.msg-user').first();
    await first.getByRole('button', { name: 'Edit', exact: true }).click();
    await page.keyboard.press('Escape');
    await page.getByLabel('Edit message').waitFor({ state: 'detached' });
    await first.getByRole('button', { name: 'Edit', exact: true }).click();
    await page.getByLabel('Edit message').fill('Edited question');
    await page.getByRole('button', { name: 'Save and resend' }).click();
    const dialog = page.getByRole('dialog');
    expect(await dialog.innerText()).toContain('Saving removes the 3 later messages of this chat (1 of yours and 2 from the assistant and tools)');
    await dialog.getByRole('button', { name: 'Cancel' }).click();
    await dialog.waitFor({ state: 'detached' });
    // (A single newline is a soft break in the answer's Markdown.)
    expect((await assistantTexts(page)).map((t) => t.replace(/\s+/g, ' '))).toEqual(['Echo: Original question', 'Echo: Second question']);
    await page.getByRole('button', { name: 'Save and resend' }).click();
    await dialog.getByRole('button', { name: 'Remove 3 and resend' }).click();
    await page.waitForFunction(() => {
      const a = [...document.querySelectorAll('article.msg-assistant:not(.streaming)')].map((e) => e.textContent);
      return a.length === 1 && a[0]?.includes('Echo: Edited question');
    });
    await page.close();
  });

  it('3. a stopped answer is marked "stopped"', async () => {
    const page = await owner.newPage();
    await newChat(page, 'Stop me here [[mock gate="stopped" gate_after=2]]');
    await gate.waiting('stopped');
    await streaming(page).getByText('Echo: Stop').waitFor();
    await page.getByRole('button', { name: 'Stop', exact: true }).click();
    await answers(page).locator('.badge.stopped', { hasText: 'stopped' }).waitFor();
    await statusBadge(page).getByText('idle').waitFor();
    // Stop is shown only while a turn runs.
    expect(await page.getByRole('button', { name: 'Stop', exact: true }).count()).toBe(0);
    await gate.open('stopped');
    await page.close();
  });

  it('4. a failed turn keeps its error in the conversation, with Retry, after the next message too', async () => {
    const page = await owner.newPage();
    // The gate holds each failing request until the test has seen it arrive (closed again after each pass).
    const close = async () => {
      expect((await fetch(`${stack.mockUrl}/__mock/gates/fail4/close`, { method: 'POST' })).ok).toBe(true);
    };
    await newChat(page, 'Fail now [[mock error_status=400 gate="fail4"]]');
    await gate.waiting('fail4');
    await gate.open('fail4');
    const failed = page.locator('article.msg-failed');
    await failed.waitFor();
    await close();
    expect(await failed.locator('.turn-error').innerText()).toMatch(/^Error \([a-z_]+\): \S/);
    // Retry runs the turn again (it fails again: the same message asks the mock for an error).
    await failed.getByRole('button', { name: 'Retry' }).click();
    await gate.waiting('fail4');
    await statusBadge(page).getByText('answering').waitFor();
    await gate.open('fail4');
    await statusBadge(page).getByText('error').waitFor();
    await failed.getByRole('button', { name: 'Retry' }).waitFor();
    expect(await page.locator('article.msg-user').count()).toBe(1);
    await page.getByLabel('Message', { exact: true }).fill('Then this works');
    await page.keyboard.press('Enter');
    await answers(page).first().waitFor();
    await statusBadge(page).getByText('idle').waitFor();
    // Still in the conversation, under the message it answered; no Retry once a later turn ran.
    expect(await failed.count()).toBe(1);
    expect(await failed.getByRole('button', { name: 'Retry' }).count()).toBe(0);
    await page.close();
  });

  it('13. "Load older messages" keeps the reader\'s place', async () => {
    const [chat] = await insertLongChats(stack.pgUrl, ownerId, ['Long history'], 120);
    const page = await owner.newPage();
    const errors = watchConsole(page);
    await page.goto(`/chats/${chat?.id ?? ''}`);
    const older = page.getByRole('button', { name: 'Load older messages' });
    await waitOrTell(page, older, errors);
    const top = page.locator('article[data-message-id]').first();
    const id = await top.getAttribute('data-message-id');
    await page.locator('.messages').evaluate((e) => (e.scrollTop = 0));
    await older.click();
    await page.waitForFunction(() => document.querySelectorAll('article[data-message-id]').length === 100);
    // The message that was at the top is still in view, not the oldest one.
    const box = await page.locator(`article[data-message-id="${id ?? ''}"]`).boundingBox();
    const pane = await page.locator('.messages').boundingBox();
    expect(box && pane && box.y >= pane.y - 100 && box.y < pane.y + pane.height).toBe(true);
    await page.close();
  });

  it('a read that goes unanswered is sent again after 10 s: the page does not stay on "Loading…"', async () => {
    const READ_WAIT_MS = 10_000; // web/src/api.ts
    const page = await owner.newPage();
    await page.clock.install();
    let asked = 0;
    let heldOne: () => void = () => undefined;
    const held = new Promise<void>((resolve) => (heldOne = resolve));
    await page.route('**/api/v2/users/me', async (route) => {
      asked += 1;
      // The first session check is never answered (as an answer lost on the way); the second goes through.
      if (asked === 1) {
        heldOne();
        return;
      }
      await route.continue();
    });
    await page.goto('/');
    await held;
    await page.getByText('Loading…').first().waitFor();
    // The page's clock past the wait: no wall-clock sleep.
    await page.clock.fastForward(READ_WAIT_MS + 1000);
    await page.getByRole('button', { name: /^Log out/ }).waitFor();
    expect(asked).toBe(2);
    await page.close();
  });

  it('14 and 18. the sidebar shows the open chat\'s status from its stream at once; "thinking…" while it reasons', async () => {
    const page = await owner.newPage();
    await newChat(page, 'Reason first [[mock reasoning gate="think" gate_after=0]]');
    const id = page.url().split('/').pop() ?? '';
    await gate.waiting('think');
    await page.getByText('thinking…').first().waitFor();
    await page.locator(`.sidebar li[data-chat-id="${id}"] .badge`, { hasText: 'answering' }).waitFor();
    await gate.open('think');
    await statusBadge(page).getByText('idle').waitFor();
    await page.locator(`.sidebar li[data-chat-id="${id}"] .badge`).waitFor({ state: 'detached', timeout: 1000 });
    await page.close();
  });

  it('17. code is highlighted with a language label and a copy button; math is rendered; still sanitized', async () => {
    const page = await owner.newPage();
    const reply = '```js\\nconst x = 1;\\n```\\n\\n> quoted\\n\\nEuler: $e^{i\\\\pi} + 1 = 0$ <img src=x onerror=\\"window.__xss=1\\">';
    await newChat(page, `Code and math [[mock reply="${reply}"]]`);
    const md = answers(page).locator('.markdown');
    await md.locator('.code-block .code-lang', { hasText: 'js' }).waitFor();
    await md.locator('code.hljs .hljs-keyword', { hasText: 'const' }).waitFor();
    await md.getByRole('button', { name: 'Copy code' }).waitFor();
    await md.locator('.math .katex').waitFor();
    expect(await md.locator('blockquote').innerText()).toBe('quoted');
    expect(await md.locator('img').count()).toBe(0);
    expect(await page.evaluate(() => (window as unknown as { __xss?: number }).__xss)).toBeUndefined();
    await page.close();
  });

  it('19. a missing chat says so with a way back', async () => {
    const page = await owner.newPage();
    await page.goto('/chats/00000000-0000-4000-8000-000000000000');
    await page.getByRole('heading', { name: 'This chat cannot be opened' }).waitFor();
    await page.getByRole('link', { name: 'Back to a new chat' }).click();
    await page.getByRole('heading', { name: 'New chat' }).waitFor();
    await page.close();
  });

  it('Send → first token in the view: the median of 10 (printed)', async () => {
    const page = await owner.newPage();
    await newChat(page, 'warm up');
    await answers(page).first().waitFor();
    const times: number[] = [];
    for (let i = 0; i < 10; i++) {
      const name = `ttft${i}`;
      await page.getByLabel('Message', { exact: true }).fill(`Timed ${i} [[mock gate="${name}" gate_after=2 chunks=3]]`);
      // Page times: the click, and the first streamed text in the view (a MutationObserver in the page).
      await page.evaluate(() => {
        const w = window as unknown as { __first?: number; __sent?: number };
        w.__first = undefined;
        const obs = new MutationObserver(() => {
          if (document.querySelector('article.streaming .markdown')?.textContent) {
            w.__first = performance.now();
            obs.disconnect();
          }
        });
        obs.observe(document.body, { childList: true, subtree: true, characterData: true });
        document.querySelector('.composer button[type="submit"]')?.addEventListener('click', () => (w.__sent = performance.now()), { once: true });
      });
      await page.getByRole('button', { name: 'Send', exact: true }).click();
      await gate.waiting(name);
      await streaming(page).getByText(`Echo: Timed`).waitFor();
      const t = await page.evaluate(() => {
        const w = window as unknown as { __first?: number; __sent?: number };
        return (w.__first ?? NaN) - (w.__sent ?? NaN);
      });
      times.push(t);
      await gate.open(name);
      await page.waitForFunction((n) => document.querySelectorAll('article.msg-assistant:not(.streaming)').length === n, i + 2);
      await statusBadge(page).getByText('idle').waitFor();
    }
    const sorted = [...times].sort((a, b) => a - b);
    const median = ((sorted[4] ?? 0) + (sorted[5] ?? 0)) / 2;
    console.log(`Send → first token in the view: median ${median.toFixed(0)} ms of 10 (min ${sorted[0]?.toFixed(0)}, max ${sorted[9]?.toFixed(0)})`);
    expect(times.every((t) => Number.isFinite(t) && t > 0)).toBe(true);
    await page.close();
  });

  it('5. a wrong password shows the API\'s detail ("Incorrect email or password."), not only its message', async () => {
    const context = await newContext(browser, { baseURL: stack.url });
    const page = await context.newPage();
    await page.goto('/login');
    await page.getByLabel('Email').fill(OWNER.email);
    await page.getByLabel('Password').fill('not the password');
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.getByRole('alert').filter({ hasText: 'Incorrect email or password.' }).waitFor();
    await context.close();
  });

  it('6. a session ended elsewhere goes to the login, and back to the same chat after it', async () => {
    const context = await newContext(browser, { baseURL: stack.url });
    expect((await context.request.post('/api/v2/users/login', { data: { email: OWNER.email, password: OWNER.password } })).ok()).toBe(true);
    const page = await context.newPage();
    await newChat(page, 'Session question');
    await answers(page).first().waitFor();
    const url = page.url();
    // The owner's other browser revokes every other session: this page's stream closes (4401).
    expect((await owner.request.delete('/api/v2/users/me/sessions')).ok()).toBe(true);
    await page.getByRole('heading', { name: 'Log in to chatd-edge' }).waitFor();
    expect(await page.getByLabel('Message', { exact: true }).count()).toBe(0);
    await page.getByLabel('Email').fill(OWNER.email);
    await page.getByLabel('Password').fill(OWNER.password);
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.waitForURL(url);
    await answers(page).filter({ hasText: 'Echo: Session question' }).waitFor();
    await context.close();
  });

  it('9 and 10. a revoked key is no longer shown as "your new key"; revoking asks first; a key has a copy button', async () => {
    const page = await owner.newPage();
    await page.goto('/settings');
    await page.getByLabel('Name').fill('throwaway');
    await page.getByRole('button', { name: 'Create key' }).click();
    await page.getByTestId('new-key').waitFor();
    await page.getByRole('button', { name: 'Copy key' }).waitFor();
    await page.getByRole('button', { name: 'Revoke key throwaway' }).click();
    const dialog = page.getByRole('dialog');
    await dialog.getByRole('button', { name: 'Cancel' }).click();
    await dialog.waitFor({ state: 'detached' });
    expect(await page.getByTestId('new-key').count()).toBe(1);
    await page.getByRole('button', { name: 'Revoke key throwaway' }).click();
    await dialog.getByRole('button', { name: 'Revoke key' }).click();
    await page.getByRole('button', { name: 'Revoke key throwaway' }).waitFor({ state: 'detached' });
    expect(await page.getByTestId('new-key').count()).toBe(0);
    await page.close();
  });

  it('10, 11 and 16. admin: the provider type is a select with the one-per-type rule; deleting a provider or a model and a role change ask first; Users reads at 375 px', async () => {
    expect((await owner.request.post('/api/v2/users', { data: { email: 'second@example.com', username: 'second', password: 'second password 1' } })).ok()).toBe(true);
    const page = await owner.newPage();
    await page.goto('/admin');
    await page.getByText('One provider per type').waitFor();
    const types = page.locator('form', { hasText: 'Add a provider' }).locator('label', { hasText: 'Type' }).locator('select option');
    expect(await types.count()).toBeGreaterThan(1);
    // 10: deleting a provider or a model asks first, and Cancel deletes nothing.
    const providerDeletes = page.getByRole('button', { name: /^Delete provider/ });
    await providerDeletes.first().waitFor();
    const providers = await providerDeletes.count();
    await providerDeletes.first().click();
    const askProvider = page.getByRole('dialog');
    await askProvider.getByText(/^Delete the provider /).waitFor();
    await askProvider.getByRole('button', { name: 'Cancel' }).click();
    await askProvider.waitFor({ state: 'detached' });
    expect(await providerDeletes.count()).toBe(providers);
    await page.getByRole('tab', { name: 'Models' }).click();
    const modelDeletes = page.getByRole('button', { name: /^Delete (?!provider)/ });
    await modelDeletes.first().waitFor();
    const models = await modelDeletes.count();
    await modelDeletes.first().click();
    const askModel = page.getByRole('dialog');
    await askModel.getByText(/^Delete the model /).waitFor();
    // The last model's deletion never promises another default.
    if (models === 1) expect(await askModel.getByText('another model becomes the default').count()).toBe(0);
    await askModel.getByRole('button', { name: 'Cancel' }).click();
    await askModel.waitFor({ state: 'detached' });
    expect(await modelDeletes.count()).toBe(models);
    await page.getByRole('tab', { name: 'Users' }).click();
    const row = page.getByRole('row').filter({ hasText: 'second' });
    await row.getByText('Member', { exact: true }).waitFor();
    await row.getByRole('button', { name: /owner/i }).click();
    const dialog = page.getByRole('dialog');
    await dialog.getByRole('button', { name: 'Cancel' }).click();
    await dialog.waitFor({ state: 'detached' });
    expect(await row.getByText('Member', { exact: true }).count()).toBe(1);
    await page.setViewportSize({ width: 375, height: 800 });
    await row.waitFor();
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(375);
    await page.close();
  });

  it('8. settings: my usage (with a bar per day) and change my password', async () => {
    const page = await owner.newPage();
    await page.goto('/settings');
    await page.getByRole('list', { name: 'Tokens by day' }).locator('li').first().waitFor();
    await page.getByText(/answers, [\d,]+ tokens, cost/).waitFor();
    await page.getByLabel('Current password').fill('wrong one');
    await page.getByLabel('New password', { exact: true }).fill('daily driver 2');
    await page.getByLabel('Repeat the new password').fill('daily driver 2');
    await page.getByRole('button', { name: 'Change password' }).click();
    await page.locator('#password-heading ~ [role="alert"]').waitFor();
    await page.getByLabel('Current password').fill(OWNER.password);
    await page.getByRole('button', { name: 'Change password' }).click();
    await page.getByText('Password changed.').waitFor();
    const r = await owner.request.put('/api/v2/users/me/password', { data: { old_password: 'daily driver 2', new_password: OWNER.password } });
    expect(r.status()).toBe(204);
    await page.close();
  });
});
