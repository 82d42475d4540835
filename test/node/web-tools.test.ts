// Callbacks given to page.evaluate run in the browser: they use DOM types.
/// <reference lib="dom" />
/**
 * Agent tools in the web UI, in chromium against the whole local stack (see web.test.ts): the seeded local MCP
 * server `local` is enabled with approval `ask`, the mock LLM asks for a tool call, the page shows the pending call
 * with Approve / Deny, and after the approval the call, its result and the final answer. Every wait is on a DOM state.
 * A stack of its own (its own owner, made through the setup screen), so web.test.ts's shared state is not touched.
 */
import type { Browser, BrowserContext } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LocalStack } from '../../scripts/lib/scaletest-stack.mjs';
import { criticalViolations, newChat, statusBadge, newContext, startBrowserAndStack, stopBrowserAndStack } from './web-helpers.js';

const OWNER = { email: 'tools-owner@example.com', username: 'toolsowner', password: 'correct horse battery' };

let stack: LocalStack;
let browser: Browser;
let owner: BrowserContext;

beforeAll(async () => {
  ({ browser, stack } = await startBrowserAndStack());
  owner = await newContext(browser, { baseURL: stack.url, viewport: { width: 1280, height: 800 } });
}, 180_000);

afterAll(async () => {
  await stopBrowserAndStack(browser, stack);
}, 90_000);

describe('web UI: agent tools', () => {
  it('a tool call waiting for approval is approved from the chat view; call, result and answer are shown', async () => {
    const page = await owner.newPage();
    await page.goto('/setup');
    await page.getByLabel('Email').fill(OWNER.email);
    await page.getByLabel('Username').fill(OWNER.username);
    await page.getByLabel(/^Password/).fill(OWNER.password);
    await page.getByRole('button', { name: 'Create the owner account' }).click();
    await page.getByRole('heading', { name: 'New chat' }).waitFor();

    // The dev stack seeds `local` disabled: enable it, every call asking for approval.
    const servers = (await (await page.request.get('/api/v2/chats/mcp-servers')).json()) as { id: string; name: string }[];
    const local = servers.find((s) => s.name === 'local');
    if (!local) throw new Error('the dev stack seeded no MCP server named local');
    const enabled = await page.request.patch(`/api/v2/chats/mcp-servers/${local.id}`, { data: { enabled: true, tool_approval: 'ask' } });
    expect(enabled.status()).toBe(200);

    try {
      await newChat(page, 'What is 2 + 3? [[mock tool="local__add" tool_args="{\\"a\\":2,\\"b\\":3}"]]');

      // The pending call: name, server, args, and labelled buttons; the status says why the chat waits.
      const pending = page.getByRole('region', { name: 'Tool calls waiting for approval' });
      const approve = pending.getByRole('button', { name: 'Approve local__add' });
      await approve.waitFor();
      expect(await statusBadge(page).innerText()).toBe('waiting for approval');
      expect(await pending.innerText()).toContain('on local');
      expect(JSON.parse(await pending.locator('pre').innerText())).toEqual({ a: 2, b: 3 });
      await expect.poll(() => pending.getByRole('button', { name: 'Deny local__add' }).isVisible()).toBe(true);
      expect(await criticalViolations(page)).toEqual([]);

      // Keyboard: focus the button and press Enter.
      await approve.focus();
      await page.keyboard.press('Enter');

      // The answer, then the durable call (collapsed, args as JSON text) and its result.
      const answer = page.locator('article.msg-assistant:not(.streaming) .markdown', { hasText: 'Tools said: 5' });
      await answer.waitFor();
      await pending.waitFor({ state: 'detached' });
      const call = page.locator('article.msg-assistant:not(.streaming) details.tool-call');
      expect(await call.locator('summary').innerText()).toBe('Tool call: local__add');
      expect(await call.getAttribute('open')).toBeNull();
      await call.locator('summary').click();
      expect(JSON.parse(await call.locator('pre').innerText())).toEqual({ a: 2, b: 3 });
      const result = page.locator('article.msg-tool details.tool-result');
      expect(await result.locator('summary').innerText()).toBe('Tool result: local__add');
      expect(await result.evaluate((el) => el.classList.contains('tool-error'))).toBe(false);
      await result.locator('summary').click();
      expect(await result.locator('pre').innerText()).toContain('"sum": 5');
      await expect.poll(() => statusBadge(page).innerText()).toBe('idle');
    } finally {
      // Leave the server as the stack seeded it.
      const restored = await page.request.patch(`/api/v2/chats/mcp-servers/${local.id}`, { data: { enabled: false } });
      expect(restored.status()).toBe(200);
    }
  }, 120_000);
});
