// Callbacks given to page.evaluate run in the browser: they use DOM types.
/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
/**
 * The screens of files (issue 26) and sharing (issue 28), in chromium: its own stack, an owner and a second user made
 * over the API. Waits are on DOM states and the mock's replies, never sleeps.
 */
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LocalStack } from '../../scripts/lib/scaletest-stack.mjs';
import { seriousViolations, newChat, screenshot, statusBadge, newContext, startBrowserAndStack, stopBrowserAndStack } from './web-helpers.js';

const OWNER = { email: 'sharer@example.com', username: 'sharer', password: 'sharer password 1' };
const VIEWER = { email: 'viewer@example.com', username: 'viewer', password: 'viewer password 1' };
/** A 1×1 PNG. */
const PNG = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==';

let stack: LocalStack;
let browser: Browser;
let owner: BrowserContext;
let viewer: BrowserContext;

beforeAll(async () => {
  ({ browser, stack } = await startBrowserAndStack());
  owner = await newContext(browser, { baseURL: stack.url, viewport: { width: 1280, height: 800 } });
  expect((await owner.request.post('/api/v2/users/first', { data: OWNER })).status()).toBe(201);
  expect((await owner.request.post('/api/v2/users', { data: VIEWER })).status()).toBe(201);
  viewer = await newContext(browser, { baseURL: stack.url, viewport: { width: 1280, height: 800 } });
  expect((await viewer.request.post('/api/v2/users/login', { data: { email: VIEWER.email, password: VIEWER.password } })).ok()).toBe(true);
}, 180_000);

afterAll(async () => {
  await stopBrowserAndStack(browser, stack);
}, 90_000);

/** Drops files on the composer as a drag from the desktop would. */
async function dropFiles(page: Page, files: { name: string; type: string; b64: string }[]): Promise<void> {
  const dt = await page.evaluateHandle((fs) => {
    const d = new DataTransfer();
    for (const f of fs) d.items.add(new File([Uint8Array.from(atob(f.b64), (c) => c.charCodeAt(0))], f.name, { type: f.type }));
    return d;
  }, files);
  await page.locator('form.composer').dispatchEvent('drop', { dataTransfer: dt });
}

const answers = (page: Page) => page.locator('article.msg-assistant:not(.streaming) .markdown');

describe('web UI: files', () => {
  it('an image dropped on the composer is uploaded, sent, shown inline and seen by the model; a wrong file says why', async () => {
    const page = await owner.newPage();
    await newChat(page, 'Files here');
    await answers(page).first().waitFor();
    // A file whose bytes are no PNG: the server's 415 shows on its chip, and it is not sent.
    await dropFiles(page, [{ name: 'fake.png', type: 'image/png', b64: btoa('not an image at all') }]);
    const bad = page.locator('.chips li', { hasText: 'fake.png' });
    await bad.locator('[role="alert"]').waitFor();
    expect(await bad.getAttribute('data-state')).toBe('failed');
    await bad.getByRole('button', { name: 'Remove fake.png' }).click();
    await bad.waitFor({ state: 'detached' });

    await dropFiles(page, [{ name: 'dot.png', type: 'image/png', b64: PNG }]);
    const chip = page.locator('.chips li', { hasText: 'dot.png' });
    await chip.locator('text=70 B').waitFor();
    await page.locator('.chips li[data-state="ready"]').waitFor();
    await page.getByLabel('Message', { exact: true }).fill('What is this? [[mock describe_files]]');
    await page.keyboard.press('Enter');
    await page.waitForFunction(() => document.querySelectorAll('article.msg-assistant:not(.streaming)').length === 2);
    expect(await answers(page).nth(1).innerText()).toBe('Saw 1 image: image/png 70 bytes; 0 files.');
    expect(await page.locator('.chips li').count()).toBe(0);
    // The image is shown inline in the user's message, read with the session cookie.
    const img = page.locator('article.msg-user img.msg-image[alt="dot.png"]');
    await img.waitFor();
    await page.waitForFunction(() => {
      const i = document.querySelector<HTMLImageElement>('article.msg-user img.msg-image');
      return i?.complete === true && i.naturalWidth === 1;
    });
    await statusBadge(page).getByText('idle').waitFor();
    await screenshot(page, 'files-1280');
    expect(await seriousViolations(page)).toEqual([]);
    await page.setViewportSize({ width: 375, height: 800 });
    await screenshot(page, 'files-375');
    await page.close();
  });
});

describe('web UI: sharing', () => {
  it('the owner shares a chat with a user, who finds it under "Shared with me", read-only, and is told when access ends', async () => {
    const page = await owner.newPage();
    await newChat(page, 'Shared question');
    await answers(page).first().waitFor();
    const chatId = page.url().split('/').pop() ?? '';
    await page.getByRole('button', { name: 'Share…' }).click();
    const dialog = page.getByRole('dialog');
    await dialog.getByText('Only you can see this chat.').waitFor();
    await dialog.getByLabel('User to share with').selectOption({ label: VIEWER.username });
    await dialog.getByRole('button', { name: 'Share with user' }).click();
    await dialog.getByRole('list', { name: 'Viewers' }).getByText(`${VIEWER.username} · viewer`).waitFor();
    await screenshot(page, 'share-dialog');
    expect(await seriousViolations(page)).toEqual([]);
    await dialog.getByRole('button', { name: 'Done' }).click();

    const other = await viewer.newPage();
    await other.goto('/');
    const row = other.locator(`.shared-list li[data-chat-id="${chatId}"]`);
    await row.getByRole('link').click();
    await other.waitForURL(`**/chats/${chatId}`);
    await other.locator('article.msg-assistant .markdown', { hasText: 'Echo: Shared question' }).waitFor();
    await other.getByText('you can read it, live, but not write in it').waitFor();
    expect(await other.getByLabel('Message', { exact: true }).count()).toBe(0);
    expect(await other.getByRole('button', { name: 'Share…' }).count()).toBe(0);
    expect(await other.getByRole('button', { name: 'Rename', exact: true }).count()).toBe(0);

    // The owner stops sharing: the viewer's stream closes (4403) and the page says so.
    await page.getByRole('button', { name: 'Share…' }).click();
    await dialog.getByRole('button', { name: `Stop sharing with ${VIEWER.username}` }).click();
    await dialog.getByText('Only you can see this chat.').waitFor();
    await dialog.getByRole('button', { name: 'Done' }).click();
    await other.getByRole('alert').filter({ hasText: 'Your access to this chat has ended' }).waitFor();
    await other.close();
    await page.close();
  });

  it('a share link shows the chat read-only at /s/{token} to anyone, until it is revoked', async () => {
    const page = await owner.newPage();
    await newChat(page, 'Linked question');
    await answers(page).first().waitFor();
    await page.getByRole('button', { name: 'Share…' }).click();
    const dialog = page.getByRole('dialog');
    await dialog.getByRole('button', { name: 'New share link' }).click();
    const url = await dialog.getByTestId('share-url').innerText();
    expect(url).toMatch(new RegExp(`^${stack.url}/s/[A-Za-z0-9_-]+$`));
    await dialog.getByRole('button', { name: 'Revoke' }).waitFor();

    const anon = await newContext(browser, { viewport: { width: 375, height: 800 } });
    const pub = await anon.newPage();
    await pub.goto(url);
    await pub.locator('article.msg-assistant .markdown', { hasText: 'Echo: Linked question' }).waitFor();
    await pub.getByText(`Shared by ${OWNER.username}`).waitFor();
    expect(await pub.getByLabel('Message', { exact: true }).count()).toBe(0);
    await screenshot(pub, 'shared-link-375');
    expect(await seriousViolations(pub)).toEqual([]);

    await dialog.getByRole('button', { name: 'Revoke' }).click();
    await dialog.getByRole('button', { name: 'Revoke' }).waitFor({ state: 'detached' });
    await anon.close();
    // A new visitor (the snapshot may be cached for up to 60 s where it was read: by design) gets the 404 page.
    const late = await newContext(browser);
    const gone = await late.newPage();
    await gone.goto(url);
    await gone.getByText('This share link does not exist, was revoked or has expired.').waitFor();
    await late.close();
    await page.close();
  });
});
