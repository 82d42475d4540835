// Callbacks given to page.evaluate run in the browser: they use DOM types.
/// <reference lib="dom" />
/**
 * The rest of issue 25's defects, in chromium against the whole local stack (see web-chat.test.ts): the MCP servers
 * admin screen (8), a tool call awaiting approval (15), the Web Push opt-in with a push service that never answers
 * (7), the skip link (12). Its own stack and owner (made over the API). Waits are on DOM states and Playwright's
 * clock, never sleeps.
 */
import type { Browser, BrowserContext } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LocalStack } from '../../scripts/lib/scaletest-stack.mjs';
import { newChat, statusBadge, newContext, startBrowserAndStack, stopBrowserAndStack } from './web-helpers.js';

const OWNER = { email: 'admin-ui@example.com', username: 'adminui', password: 'admin screens 1' };

let stack: LocalStack;
let browser: Browser;
let owner: BrowserContext;

interface Server {
  id: string;
  name: string;
  url: string;
  enabled: boolean;
  has_headers: boolean;
  tool_approval: string;
}

beforeAll(async () => {
  ({ browser, stack } = await startBrowserAndStack());
  owner = await newContext(browser, { baseURL: stack.url, viewport: { width: 1280, height: 800 } });
  const r = await owner.request.post('/api/v2/users/first', { data: OWNER });
  expect(r.status()).toBe(201);
}, 180_000);

afterAll(async () => {
  await stopBrowserAndStack(browser, stack);
}, 90_000);

/** web/src/push.ts's SUBSCRIBE_TIMEOUT_MS (the module is the browser's; its message below says 15 s). */
const SUBSCRIBE_TIMEOUT_MS = 15_000;

const servers = async (): Promise<Server[]> => (await (await owner.request.get('/api/v2/chats/mcp-servers')).json()) as Server[];

describe('web UI as a daily driver: admin, tools, push, keyboard', () => {
  it('8. admin: an MCP servers screen lists, adds (headers write-only), enables, refuses with the detail, deletes after a confirm', async () => {
    const local = (await servers()).find((s) => s.name === 'local');
    if (!local) throw new Error('the dev stack seeded no MCP server named local');
    const page = await owner.newPage();
    await page.goto('/admin');
    await page.getByRole('tab', { name: 'MCP servers' }).click();
    const list = page.getByRole('list', { name: 'MCP servers' });
    const seeded = list.locator('li[data-server="local"]');
    await seeded.waitFor();
    expect(await seeded.getByRole('checkbox', { name: 'Enabled' }).isChecked()).toBe(false);

    // Add the local MCP server again under another name, with a header and "ask".
    await page.getByLabel('Name (letters, digits, "_" or "-")').fill('localcopy');
    await page.getByLabel('URL (Streamable HTTP endpoint)').fill(local.url);
    await page.getByLabel(/^Headers/).fill('X-Test-Token: secret-value');
    await page.locator('select[name="tool_approval"]').selectOption('ask');
    await page.getByRole('button', { name: 'Add MCP server' }).click();
    const added = list.locator('li[data-server="localcopy"]');
    await added.waitFor();
    expect(await added.getByRole('checkbox', { name: 'Enabled' }).isChecked()).toBe(true);
    expect(await added.innerText()).toContain('enabled · headers set · tools all');
    expect(await added.innerText()).not.toContain('secret-value');
    const made = (await servers()).find((s) => s.name === 'localcopy');
    expect(made).toMatchObject({ url: local.url, enabled: true, has_headers: true, tool_approval: 'ask' });

    // Disable, and back: each change is the server's.
    await added.getByRole('checkbox', { name: 'Enabled' }).click(); // controlled: it flips when the server answers
    await expect.poll(async () => (await servers()).find((s) => s.name === 'localcopy')?.enabled).toBe(false);
    await added.getByText('disabled · headers set').waitFor();
    await added.getByRole('checkbox', { name: 'Enabled' }).click();
    await added.getByText('enabled · headers set').waitFor();

    // A second server with the same name: the API's message is shown.
    await page.getByLabel('Name (letters, digits, "_" or "-")').fill('localcopy');
    await page.getByLabel('URL (Streamable HTTP endpoint)').fill(local.url);
    await page.getByRole('button', { name: 'Add MCP server' }).click();
    expect(await page.getByRole('alert').innerText()).toBe('An MCP server with this name already exists.');

    // Delete asks first; Cancel keeps it, the confirm deletes it.
    await added.getByRole('button', { name: 'Delete MCP server localcopy' }).click();
    const dialog = page.getByRole('dialog', { name: 'Delete the MCP server localcopy?' });
    await dialog.getByRole('button', { name: 'Cancel' }).click();
    await dialog.waitFor({ state: 'detached' });
    expect((await servers()).some((s) => s.name === 'localcopy')).toBe(true);
    await added.getByRole('button', { name: 'Delete MCP server localcopy' }).click();
    await dialog.getByRole('button', { name: 'Delete MCP server' }).click();
    await added.waitFor({ state: 'detached' });
    expect((await servers()).map((s) => s.name)).toEqual(['local']);
    await page.close();
  }, 240_000);

  it('15. a call awaiting approval: the composer says so (not "answering"), Deny looks unlike Approve, a reason reaches the model', async () => {
    const local = (await servers()).find((s) => s.name === 'local');
    if (!local) throw new Error('the dev stack seeded no MCP server named local');
    expect((await owner.request.patch(`/api/v2/chats/mcp-servers/${local.id}`, { data: { enabled: true, tool_approval: 'ask' } })).status()).toBe(200);
    const page = await owner.newPage();
    try {
      await newChat(page, 'Add 2 and 3 [[mock tool="local__add" tool_args="{\\"a\\":2,\\"b\\":3}"]]');
      const pending = page.getByRole('region', { name: 'Tool calls waiting for approval' });
      const approve = pending.getByRole('button', { name: 'Approve local__add' });
      const deny = pending.getByRole('button', { name: 'Deny local__add' });
      await deny.waitFor();
      expect(await statusBadge(page).innerText()).toBe('waiting for approval');
      const placeholder = await page.locator('#composer-input').getAttribute('placeholder');
      expect(placeholder).toBe('A tool call waits for your approval (above): a message now is queued');
      const look = (b: typeof deny) => b.evaluate((el) => ({ color: getComputedStyle(el).color, border: getComputedStyle(el).borderColor, bg: getComputedStyle(el).backgroundColor }));
      const [a, d] = [await look(approve), await look(deny)];
      expect(d.color).not.toBe(a.color);
      expect(d.bg).not.toBe(a.bg);

      await pending.getByLabel('Reason for denying local__add (optional)').fill('not with these numbers');
      await deny.click();
      await pending.waitFor({ state: 'detached' });
      const result = page.locator('article.msg-tool details.tool-result');
      await result.waitFor();
      expect(await result.evaluate((el) => el.classList.contains('tool-error'))).toBe(true);
      await expect.poll(() => statusBadge(page).innerText()).toBe('idle');
      // The reason is in the stored tool result the model reads.
      const id = page.url().split('/').pop() ?? '';
      const msgs = (await (await owner.request.get(`/api/v2/chats/${id}/messages`)).json()) as { messages: { role: string; content: unknown }[] };
      const tool = msgs.messages.find((m) => m.role === 'tool');
      expect(JSON.stringify(tool?.content)).toContain('The user denied this tool call. Reason: not with these numbers');
      await page.close();
    } finally {
      expect((await owner.request.patch(`/api/v2/chats/mcp-servers/${local.id}`, { data: { enabled: false } })).status()).toBe(200);
    }
  }, 240_000);

  it('7. the Web Push opt-in does not hang: a push service that never answers ends in an error and the button is back', async () => {
    const context = await newContext(browser, { baseURL: stack.url, storageState: await owner.storageState() });
    await context.grantPermissions(['notifications'], { origin: stack.url });
    // The browser's push service never answers (as with none reachable): subscribe's promise stays pending.
    await context.addInitScript(() => {
      PushManager.prototype.subscribe = function () {
        document.documentElement.dataset.subscribing = 'yes';
        return new Promise<PushSubscription>(() => {});
      };
      PushManager.prototype.getSubscription = () => Promise.resolve(null);
    });
    const page = await context.newPage();
    await page.clock.install();
    await page.goto('/settings');
    const button = page.getByRole('button', { name: 'Turn on notifications on this device' });
    await button.click();
    await page.locator('html[data-subscribing="yes"]').waitFor();
    expect(await button.isDisabled()).toBe(true);
    expect(await page.getByRole('status').filter({ hasText: 'Working…' }).count()).toBe(1);
    // The page's clock past the timeout: no wall-clock wait.
    await page.clock.fastForward(SUBSCRIBE_TIMEOUT_MS + 1000);
    const alert = page.locator('section[aria-labelledby="push-heading"] [role="alert"]');
    await alert.waitFor();
    expect(await alert.innerText()).toBe("Subscribing with the browser's push service took longer than 15 s: try again.");
    expect(await button.isEnabled()).toBe(true);
    expect(await page.getByText('Notifications are off for this device.').count()).toBe(1);
    await context.close();
  }, 240_000);

  it('12. the first Tab reaches a skip link that moves the focus to the main content', async () => {
    const page = await owner.newPage();
    await page.goto('/settings');
    await page.getByRole('heading', { name: 'Notifications' }).waitFor();
    await page.keyboard.press('Tab');
    const focused = await page.evaluate(() => ({ text: document.activeElement?.textContent, href: document.activeElement?.getAttribute('href') }));
    expect(focused).toEqual({ text: 'Skip to content', href: '#main' });
    expect(await page.getByRole('link', { name: 'Skip to content' }).isVisible()).toBe(true);
    await page.keyboard.press('Enter');
    expect(await page.evaluate(() => document.activeElement?.id)).toBe('main');
    // The next Tab is inside the main content, not back in the top bar.
    await page.keyboard.press('Tab');
    expect(await page.evaluate(() => document.getElementById('main')?.contains(document.activeElement))).toBe(true);
    await page.close();
  }, 240_000);
});
