// Callbacks given to page.evaluate run in the browser: they use DOM types.
/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
/**
 * The web UI in a real browser: Debian's chromium driven by playwright-core, against the whole local stack
 * (`scripts/dev.mjs` on free ports: Postgres, proxy, mock LLM, wrangler serving web/dist and the API on one origin).
 * Turns are held with the mock's gates; every wait is on a DOM state or a gate, never a sleep. The tests share one
 * owner (made through the first-user screen by the first test) and run in order. Screenshots go to .data/screenshots/ (docs/screenshots/ with UPDATE_SCREENSHOTS=1).
 */
import { createECDH, randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import pg from 'pg';
import type { Browser, BrowserContext } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LocalStack } from '../../scripts/lib/scaletest-stack.mjs';
import { assistantTexts, criticalViolations, gates, insertLongChats, newChat, renameChat, routeStreams, screenshot, shownAt, statusBadge, streaming, stubPushManager, watchNewest, newContext, startBrowserAndStack, stopBrowserAndStack } from './web-helpers.js';

const OWNER = { email: 'owner@example.com', username: 'owner', password: 'correct horse battery' };
const MEMBER = { email: 'member@example.com', username: 'member', password: 'member password 1' };

let stack: LocalStack;
let browser: Browser;
let owner: BrowserContext;
let gate: ReturnType<typeof gates>;
const started = performance.now();

beforeAll(async () => {
  ({ browser, stack } = await startBrowserAndStack());
  gate = gates(stack.mockUrl);
  owner = await newContext(browser, { baseURL: stack.url, viewport: { width: 1280, height: 800 } });
}, 180_000);

afterAll(async () => {
  // Either may be missing when the start-up failed.
  await stopBrowserAndStack(browser, stack);
  console.log(`browser tests: ${((performance.now() - started) / 1000).toFixed(1)} s in all`);
}, 90_000);

describe('web UI in chromium', () => {
  it('first user → new chat with the model picker → the answer streams as sanitized Markdown', async () => {
    const page = await owner.newPage();
    // An empty deployment opens on Setup (GET /users/first), not on a login nobody can pass.
    await page.goto('/');
    await page.getByRole('heading', { name: 'Set up chatd-edge' }).waitFor();
    expect(page.url()).toBe(`${stack.url}/setup`);
    await page.getByLabel('Email').fill(OWNER.email);
    await page.getByLabel('Username').fill(OWNER.username);
    await page.getByLabel(/^Password/).fill(OWNER.password);
    await screenshot(page, 'setup');
    await page.getByRole('button', { name: 'Create the owner account' }).click();
    await page.getByRole('heading', { name: 'New chat' }).waitFor();

    // The picker lists GET /chats/models with the default chosen.
    const picker = page.getByLabel('Model');
    await picker.locator('option', { hasText: 'default' }).waitFor({ state: 'attached' });
    expect(await picker.locator('option').allInnerTexts()).toEqual([expect.stringContaining('default')]);

    // Raw HTML from the model is shown as text, never run; Markdown (headings, code blocks) is rendered.
    const reply = '# Heading\\n\\nSome **bold** text.\\n\\n```js\\nconst x = 1;\\n```\\n\\n<img src=x onerror=\\"window.__xss=1\\"> <script>window.__xss=2</script>';
    await newChat(page, `Show me [[mock gate="md" gate_after=3 reply="${reply}"]]`);
    await gate.waiting('md');
    await streaming(page).getByRole('heading', { name: 'Heading' }).waitFor();
    expect(await statusBadge(page).innerText()).toBe('answering');
    await screenshot(page, 'chat-streaming');
    // Layout shifts while the rest streams in and the answer becomes durable (the status line has a fixed height).
    await page.evaluate(() => {
      const w = window as unknown as { __cls: number };
      w.__cls = 0;
      new PerformanceObserver((list) => {
        for (const e of list.getEntries() as (PerformanceEntry & { value: number; hadRecentInput: boolean })[]) if (!e.hadRecentInput) w.__cls += e.value;
      }).observe({ type: 'layout-shift' });
    });
    await gate.open('md');
    const answer = page.locator('article.msg-assistant:not(.streaming) .markdown');
    await answer.locator('pre code').waitFor();
    await statusBadge(page).getByText('idle').waitFor();
    expect(await answer.getByRole('heading', { level: 1 }).innerText()).toBe('Heading');
    expect(await answer.locator('pre code').innerText()).toContain('const x = 1;');
    expect(await answer.locator('strong').innerText()).toBe('bold');
    expect(await answer.locator('img, script').count()).toBe(0);
    expect(await answer.innerText()).toContain('<img src=x onerror=');
    expect(await page.evaluate(() => (window as unknown as { __xss?: number }).__xss)).toBeUndefined();
    const cls = await page.evaluate(() => (window as unknown as { __cls: number }).__cls);
    console.log(`layout shift while streaming: ${cls.toFixed(4)}`);
    expect(cls).toBeLessThan(0.05);
    await renameChat(page, 'Markdown, and raw HTML shown as text');
    await page.locator(`.sidebar li`, { hasText: 'Markdown, and raw HTML shown as text' }).waitFor();
    await screenshot(page, 'chat');
    expect(await criticalViolations(page)).toEqual([]);
    await page.close();
  });

  it('stop mid-answer keeps the partial', async () => {
    const page = await owner.newPage();
    await newChat(page, 'Please stop here now [[mock gate="stop" gate_after=3]]');
    await gate.waiting('stop');
    await streaming(page).getByText('Echo: Please stop').waitFor();
    await page.getByRole('button', { name: 'Stop', exact: true }).click();
    await statusBadge(page).getByText('idle').waitFor();
    await page.locator('article.msg-assistant:not(.streaming)').waitFor();
    expect(await assistantTexts(page)).toEqual(['Echo: Please stop']);
    await gate.open('stop');
    await page.close();
  });

  it('sending while busy queues; a queued message can be removed or promoted', async () => {
    const page = await owner.newPage();
    await newChat(page, 'First [[mock gate="queue"]]');
    await gate.waiting('queue');
    const box = page.getByLabel('Message', { exact: true });
    for (const text of ['Alpha', 'Bravo', 'Charlie']) {
      await box.fill(text);
      await page.getByRole('button', { name: 'Queue', exact: true }).click();
      await page.locator('.queued-text', { hasText: text }).waitFor();
    }
    await page.getByRole('button', { name: 'Remove from queue: Bravo' }).click();
    await page.locator('.queued-text', { hasText: 'Bravo' }).waitFor({ state: 'detached' });
    await page.getByRole('button', { name: 'Send next: Charlie' }).click();
    await page.waitForFunction(() => [...document.querySelectorAll('.queued-text')].map((e) => e.textContent).join(',') === 'Charlie,Alpha');
    await renameChat(page, 'Queued while answering');
    await page.locator('.sidebar li', { hasText: 'Queued while answering' }).waitFor();
    await screenshot(page, 'queue');
    await gate.open('queue');
    await page.waitForFunction(() => document.querySelectorAll('article.msg-assistant:not(.streaming)').length === 3);
    await statusBadge(page).getByText('idle').waitFor();
    expect(await assistantTexts(page)).toEqual(['Echo: First', 'Echo: Charlie', 'Echo: Alpha']);
    expect(await page.locator('.queue').count()).toBe(0);
    await page.close();
  });

  it('editing a user message drops the later messages and answers again', async () => {
    const page = await owner.newPage();
    await newChat(page, 'Original question');
    await page.locator('article.msg-assistant:not(.streaming)').waitFor();
    await page.getByLabel('Message', { exact: true }).fill('Second question');
    await page.getByRole('button', { name: 'Send', exact: true }).click();
    await page.waitForFunction(() => document.querySelectorAll('article.msg-assistant:not(.streaming)').length === 2);
    await statusBadge(page).getByText('idle').waitFor();
    await page.locator('article.msg-user').first().getByRole('button', { name: 'Edit', exact: true }).click();
    await page.getByLabel('Edit message').fill('Edited question');
    await page.getByRole('button', { name: 'Save and resend' }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Remove 3 and resend' }).click();
    await page.waitForFunction(() => {
      const a = [...document.querySelectorAll('article.msg-assistant:not(.streaming)')].map((e) => e.textContent);
      return a.length === 1 && a[0]?.includes('Echo: Edited question');
    });
    expect(await page.locator('article.msg-user .user-text').allInnerTexts()).toEqual(['Edited question']);
    expect(await assistantTexts(page)).toEqual(['Echo: Edited question']);
    await page.close();
  });

  it('a stream the server closes shows "reconnecting…" and heals with no duplicated text', async () => {
    const page = await owner.newPage();
    // The stream's sockets go through Playwright's WebSocket route: the first is closed from the server's side, the
    // second one's frames are held until the test has seen "reconnecting…".
    const { sockets, release } = await routeStreams(page);
    await newChat(page, 'Drop me softly please [[mock gate="drop" gate_after=2]]');
    await gate.waiting('drop');
    await streaming(page).getByText('Echo: Drop').waitFor();
    // The page gets a close frame (1011) as if from the server; the route closes the server's side too.
    await sockets[0]?.close({ code: 1011, reason: 'test: the server closed the socket' });
    await page.getByText('reconnecting…').waitFor();
    await screenshot(page, 'reconnecting');
    release();
    await page.getByText('reconnecting…').waitFor({ state: 'detached' });
    expect(sockets.length).toBe(2);
    await gate.open('drop');
    await page.locator('article.msg-assistant:not(.streaming)').waitFor();
    await statusBadge(page).getByText('idle').waitFor();
    expect(await assistantTexts(page)).toEqual(['Echo: Drop me softly please']);
    await page.close();
  });

  it('chat list: status refreshes by itself; archive, the archived toggle, delete', async () => {
    const page = await owner.newPage();
    await newChat(page, 'Listed chat [[mock gate="list"]]');
    const id = page.url().split('/').pop() ?? '';
    const item = page.locator(`.sidebar li[data-chat-id="${id}"]`);
    await item.locator('.badge', { hasText: 'answering' }).waitFor();
    await gate.waiting('list');
    await gate.open('list');
    // Idle rows carry no badge (compact rows).
    await item.locator('.badge').waitFor({ state: 'detached' });
    await page.getByRole('button', { name: 'Archive', exact: true }).click();
    await item.waitFor({ state: 'detached' });
    await page.getByLabel('Archived').check();
    await item.waitFor();
    await item.getByRole('button', { name: /^Actions for/ }).click();
    await page.getByRole('menuitem', { name: 'Delete…' }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Delete for good' }).click();
    await page.getByRole('heading', { name: 'New chat' }).waitFor();
    await item.waitFor({ state: 'detached' });
    expect((await page.request.get(`/api/v2/chats/${id}`)).status()).toBe(404);
    await page.close();
  });

  it('a failed turn shows its error kind; reasoning is collapsed', async () => {
    const page = await owner.newPage();
    await newChat(page, 'Think first [[mock reasoning="Weighing the options"]]');
    const reasoning = page.locator('article.msg-assistant:not(.streaming) details.reasoning');
    await reasoning.waitFor();
    expect(await reasoning.evaluate((d) => (d as HTMLDetailsElement).open)).toBe(false);
    expect(await reasoning.locator('p').isVisible()).toBe(false);
    await reasoning.locator('summary').click();
    expect(await reasoning.locator('p').innerText()).toBe('Weighing the options');
    await page.getByLabel('Message', { exact: true }).fill('Fail now [[mock error_status=400]]');
    await page.getByRole('button', { name: 'Send', exact: true }).click();
    const err = page.locator('.turn-error');
    await err.waitFor();
    expect(await err.innerText()).toMatch(/^Error \([a-z_]+\): \S/);
    expect(await statusBadge(page).innerText()).toBe('error');
    await page.close();
  });

  it("a chat with an agent shows its pinned context, marks it changed, and re-pins", async () => {
    const page = await owner.newPage();
    const agent = (await (await page.request.post('/api/v2/agents', { data: { name: 'web-agent' } })).json()) as { id: string; token: string };
    const pushContext = async (body: string) => {
      const r = await page.request.put('/api/v2/agents/me/context', {
        headers: { authorization: `Bearer ${agent.token}` },
        data: { resources: [{ source: 'AGENTS.md', body_kind: 'instruction_file', body, status: 'ok' }] },
      });
      expect(r.status()).toBe(204);
    };
    await pushContext('Be brief.');
    const chat = (await (await page.request.post('/api/v2/chats', { data: { content: 'With an agent', agent_id: agent.id } })).json()) as { id: string };
    await page.goto(`/chats/${chat.id}`);
    await page.getByText('Pinned context (1)').waitFor();
    expect(await page.locator('.context .dirty').count()).toBe(0);
    await pushContext('Be thorough.');
    await page.locator('.context .dirty').waitFor();
    await page.getByText('AGENTS.md modified').waitFor();
    await screenshot(page, 'context-dirty');
    await page.getByRole('button', { name: 'Re-pin the current context' }).click();
    await page.locator('.context .dirty').waitFor({ state: 'detached' });
    await page.close();
  });

  it('a 1,000-message chat opens on its newest page (the time printed), older ones on demand', async () => {
    const page = await owner.newPage();
    const me = (await (await page.request.get('/api/v2/users/me')).json()) as { id: string };
    // Two chats of 1,000 messages each, written straight into Postgres (their objects start cold).
    const long = await insertLongChats(stack.pgUrl, me.id, ['A long chat', 'Another long chat'], 1000);
    const [a, b] = long;
    if (!a || !b) throw new Error('the long chats were not made');

    // Times are taken in the page (Playwright's own polling would add to them): from the click on the chat in the
    // list, and from the start of the navigation, to the moment the newest message is in the DOM.
    // Opened from the chat list (the app already loaded).
    await page.addInitScript(watchNewest, b.lastId);
    await page.goto('/');
    await page.getByRole('heading', { name: 'New chat' }).waitFor();
    await page.locator(`li[data-chat-id="${b.id}"] a`).click();
    await page.locator(`article[data-message-id="${b.lastId}"]`).waitFor();
    const fromList = await shownAt(page);
    const inApp = fromList.shown - fromList.clicked;
    // Opened by its URL in a new tab: the page's own load included.
    const tab = await owner.newPage();
    await tab.addInitScript(watchNewest, a.lastId);
    await tab.goto(`/chats/${a.id}`);
    await tab.locator(`article[data-message-id="${a.lastId}"]`).waitFor();
    const byUrl = (await shownAt(tab)).shown;
    console.log(`1,000-message chat: opened in ${inApp.toFixed(0)} ms from the chat list, ${byUrl.toFixed(0)} ms by its URL in a new tab (navigation start → newest message in the DOM)`);
    // The times are printed, not asserted (a test must not depend on the machine's speed); what is asserted is what
    // makes the open fast: only the newest page of 50 is rendered, and older pages come on demand.
    expect(inApp).toBeGreaterThan(0);
    expect(await tab.locator('article.msg').count()).toBe(50);
    await tab.getByRole('button', { name: 'Load older messages' }).click();
    await tab.waitForFunction(() => document.querySelectorAll('article.msg').length === 100);
    await tab.close();
    await page.close();
  });

  it('settings: an API key is shown once, listed and revoked; the Web Push opt-in stores a subscription', async () => {
    // A push service of our own (plain http on loopback, allowed by WEBPUSH_ALLOW_INSECURE_ENDPOINTS in this stack).
    const push = http.createServer((_req, res) => res.writeHead(201).end());
    await new Promise<void>((r) => push.listen(0, '127.0.0.1', r));
    const endpoint = `http://127.0.0.1:${(push.address() as AddressInfo).port}/push/${randomUUID()}`;
    const ecdh = createECDH('prime256v1');
    ecdh.generateKeys();
    const context = await newContext(browser, { baseURL: stack.url, storageState: await owner.storageState() });
    await context.grantPermissions(['notifications'], { origin: stack.url });
    // Headless chromium has no push service to subscribe with (Chrome's is FCM): stand in for PushManager.subscribe
    // with a subscription to ours. Everything else (service worker, permission, VAPID key, the API call) is real.
    await context.addInitScript(stubPushManager, { endpoint, p256dh: ecdh.getPublicKey().toString('base64') });
    const page = await context.newPage();
    try {
      await page.goto('/settings');
      await page.getByLabel('Name').fill('ci key');
      await page.getByRole('button', { name: 'Create key' }).click();
      const shown = page.getByTestId('new-key');
      expect(await shown.innerText()).toMatch(/^\S+-\S+$/);
      await page.getByRole('cell', { name: 'ci key', exact: true }).waitFor();
      await page.getByRole('button', { name: 'Turn on notifications on this device' }).click();
      await page.getByText('Notifications are on for this device.').waitFor();
      await screenshot(page, 'settings', [shown]);
      expect(await criticalViolations(page)).toEqual([]);
      await page.getByRole('button', { name: 'Done' }).click();
      await page.reload();
      await page.getByRole('cell', { name: 'ci key', exact: true }).waitFor();
      expect(await page.getByTestId('new-key').count()).toBe(0);
      await page.getByRole('button', { name: 'Revoke key ci key' }).click();
      await page.getByRole('dialog').getByRole('button', { name: 'Revoke key' }).click();
      await page.getByText('No API keys.').waitFor();

      const sw = await page.evaluate(async () => (await navigator.serviceWorker.getRegistration('/'))?.active?.scriptURL ?? null);
      expect(sw).toBe(`${stack.url}/sw.js`);
      const db = new pg.Client({ connectionString: stack.pgUrl });
      await db.connect();
      try {
        const rows = (await db.query('SELECT endpoint_p256dh_key FROM webpush_subscriptions WHERE endpoint = $1', [endpoint])).rows;
        expect(rows).toHaveLength(1);
      } finally {
        await db.end();
      }
    } finally {
      await context.close();
      await new Promise((r) => push.close(r));
    }
  });

  it('owner admin screens: providers (keys write-only), models, deployment settings, users', async () => {
    const page = await owner.newPage();
    await page.goto('/admin');
    await page.getByText('key set').or(page.getByText('key not set')).first().waitFor();
    expect(await page.locator('input[type="password"]').evaluateAll((els) => els.map((e) => (e as HTMLInputElement).value))).toEqual(['', '']);
    await screenshot(page, 'admin');
    expect(await criticalViolations(page)).toEqual([]);
    await page.getByRole('tab', { name: 'Models' }).click();
    await page.locator('.badge', { hasText: 'default' }).waitFor();
    await page.getByRole('tab', { name: 'Deployment' }).click();
    await page.getByLabel('System prompt of new chats').fill('Be brief.');
    await page.getByRole('button', { name: 'Save system prompt' }).click();
    await page.getByText('System prompt saved.').waitFor();
    await page.getByRole('tab', { name: 'Users' }).click();
    await page.getByLabel('Email').fill(MEMBER.email);
    await page.getByLabel('Username').fill(MEMBER.username);
    await page.getByLabel('Password').fill(MEMBER.password);
    await page.getByRole('button', { name: 'Add user' }).click();
    await page.getByRole('cell', { name: new RegExp(MEMBER.username) }).waitFor();
    await page.close();
  });

  it('a member logs in, sees no admin screens (and the API refuses them), and logs out', async () => {
    const context = await newContext(browser, { baseURL: stack.url });
    const page = await context.newPage();
    try {
      await page.goto('/');
      await page.getByLabel('Email').fill(MEMBER.email);
      await page.getByLabel('Password').fill(MEMBER.password);
      await page.getByRole('button', { name: 'Log in' }).click();
      await page.getByRole('heading', { name: 'New chat' }).waitFor();
      expect(await page.getByRole('link', { name: 'Admin' }).count()).toBe(0);
      await page.goto('/admin');
      await page.getByText('Only owners can open the admin screens.').waitFor();
      expect((await page.request.get('/api/v2/users')).status()).toBe(403);
      await page.getByRole('button', { name: /Log out/ }).click();
      await page.getByRole('heading', { name: 'Log in to chatd-edge' }).waitFor();
      expect((await page.request.get('/api/v2/users/me')).status()).toBe(401);
    } finally {
      await context.close();
    }
  });

  it('works at 375 px wide with no critical axe violations; /api/v2/docs renders with no request off this origin', async () => {
    const context = await newContext(browser, { baseURL: stack.url, storageState: await owner.storageState(), viewport: { width: 375, height: 740 } });
    const offOrigin: string[] = [];
    await context.route('**/*', (route) => {
      const u = new URL(route.request().url());
      if (u.origin === stack.url || u.protocol === 'data:') return route.continue();
      offOrigin.push(u.href);
      return route.abort();
    });
    const page = await context.newPage();
    try {
      await newChat(page, 'Hello from a phone');
      await page.locator('article.msg-assistant:not(.streaming)').waitFor();
      expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(375);
      await screenshot(page, 'chat-375');
      expect(await criticalViolations(page)).toEqual([]);
      await page.goto('/');
      await page.getByRole('heading', { name: 'New chat' }).waitFor();
      expect(await criticalViolations(page)).toEqual([]);
      await page.goto('/api/v2/docs');
      await page.locator('.swagger-ui .info .title').waitFor();
      expect(await page.locator('.swagger-ui .info .title').innerText()).toContain('chatd-edge');
      expect(offOrigin).toEqual([]);
      // The API keeps its JSON 404s; other paths get the app.
      expect((await page.request.get('/api/v2/nope')).headers()['content-type']).toContain('application/json');
    } finally {
      await context.close();
    }
  });
});
