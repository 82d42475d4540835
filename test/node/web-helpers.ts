// Callbacks given to page.evaluate run in the browser: they use DOM types.
/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
/**
 * Helpers of the browser tests (web.test.ts): the local stack with the web UI, Debian's chromium driven by
 * playwright-core, the mock LLM's gates, axe, screenshots.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import pg from 'pg';
import { chromium, type APIRequestContext, type APIResponse, type Browser, type BrowserContext, type BrowserContextOptions, type Locator, type Page, type WebSocketRoute } from 'playwright-core';
import { startLocalStack, type LocalStack } from '../../scripts/lib/scaletest-stack.mjs';
import { buildWebOnce, ROOT } from '../../scripts/lib/web-build.mjs';
import { forgetStack, watchContext, watchStack } from './browser-trouble.js';

export { ROOT };
/**
 * Where the tests write their screenshots: .data/screenshots, or with UPDATE_SCREENSHOTS=1 docs/screenshots (the ones
 * the README shows), so that a test run leaves the tree as it found it.
 */
export const SHOTS = process.env.UPDATE_SCREENSHOTS === '1' ? path.join(ROOT, 'docs', 'screenshots') : path.join(ROOT, '.data', 'screenshots');
/** Debian's chromium (`.ci/run` installs it); CHROMIUM_PATH overrides. */
export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/** Builds web/ and starts `scripts/dev.mjs` on free ports (throwaway Postgres, the mock LLM as the seeded default model). */
export async function startWebStack(): Promise<LocalStack> {
  // In a process of its own: vitest's NODE_ENV=test would make Vite build React's development version. Only when the
  // sources changed since the last build (`npm test` builds just before), and once for all the browser test files.
  await buildWebOnce(() => execFileSync(process.execPath, [path.join(ROOT, 'scripts', 'web-build.mjs')], { stdio: 'pipe' }));
  const stack = await startLocalStack({
    root: ROOT,
    env: {
      CHATD_WEB_BUILD: '0', // built just above
      CHATD_NO_SEED: '0', // seed the mock LLM as the default model
      // Never seed real providers from the environment.
      OPENAI_API_KEY: '',
      ANTHROPIC_API_KEY: '',
      GOOGLE_GENERATIVE_AI_API_KEY: '',
      OPENROUTER_API_KEY: '',
    },
    // The push service of the opt-in test is plain http on loopback.
    wranglerArgs: ['--var', 'WEBPUSH_ALLOW_INSECURE_ENDPOINTS:true', '--var', 'LLM_MAX_RETRIES:0'],
  });
  // A failed test reports this stack's state (browser-trouble.ts) until it stops.
  watchStack(stack);
  const stop = stack.stop;
  return {
    ...stack,
    stop: async (opts) => {
      forgetStack(stack);
      return await stop(opts);
    },
  };
}

/**
 * How long a page action or navigation may take before it fails: a budget, not a wait (every step waits for an event).
 * On a loaded machine (several stacks, chromium and the worker suites on 2 cores, ci-repeat's extra busy core) a page
 * load has passed Playwright's default 30 s. vitest's node project gives a test 240 s.
 */
export const UI_BUDGET_MS = 90_000;

/**
 * A browser context with the UI budget as its default timeout (actions and navigations), its requests watched for a
 * failure's report, and its Node-side API calls (`context.request`, `page.request`) each on a connection of its own.
 */
export async function newContext(browser: Browser, options: BrowserContextOptions = {}): Promise<BrowserContext> {
  const context = await browser.newContext(options);
  context.setDefaultTimeout(UI_BUDGET_MS);
  watchContext(context);
  ownConnections(context.request);
  return context;
}

type RequestOptions = { headers?: Record<string, string> };
type RequestCall = (target: string, options?: RequestOptions) => Promise<APIResponse>;
const REQUEST_METHODS = ['fetch', 'get', 'post', 'put', 'patch', 'delete', 'head'] as const;

/**
 * Sends every call of `request` with `Connection: close`. workerd closes a kept-alive connection after 5 s idle, and
 * Playwright's request agent keeps connections alive: a call made about 5 s after the one before could be written to
 * a connection workerd was closing, and fail with ECONNRESET before the Worker saw it (a CI run did, stop 41). A
 * browser retries such a request; Playwright's agent does not. A new connection per call costs under a millisecond
 * on loopback. (Chromium's own requests are not affected: they go through the browser, not this agent.)
 */
function ownConnections(request: APIRequestContext): void {
  for (const method of REQUEST_METHODS) {
    const call = (request[method] as RequestCall).bind(request);
    const closing: RequestCall = (target, options = {}) => call(target, { ...options, headers: { ...options.headers, connection: 'close' } });
    Object.defineProperty(request, method, { value: closing });
  }
}

export async function launchChromium(): Promise<Browser> {
  return await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
}

/**
 * A browser test file's chromium and web stack, started side by side: each mostly waits on processes of its own (the
 * browser's, the stack's Postgres and wrangler), so a file's set-up takes the longer of the two instead of their sum.
 * When one fails to start, the other is closed before the failure is thrown.
 */
export async function startBrowserAndStack(): Promise<{ browser: Browser; stack: LocalStack }> {
  const [b, s] = await Promise.allSettled([launchChromium(), startWebStack()]);
  if (b.status === 'fulfilled' && s.status === 'fulfilled') return { browser: b.value, stack: s.value };
  await stopBrowserAndStack(b.status === 'fulfilled' ? b.value : undefined, s.status === 'fulfilled' ? s.value : undefined);
  const reason: unknown = b.status === 'rejected' ? b.reason : s.status === 'rejected' ? s.reason : undefined;
  throw reason instanceof Error ? reason : new Error(String(reason));
}

/** Closes what startBrowserAndStack started (either is undefined when it never started), side by side. */
export async function stopBrowserAndStack(browser: Browser | undefined, stack: LocalStack | undefined): Promise<void> {
  await Promise.all([browser?.close(), stack?.stop()]);
}

/** The mock LLM's gates: a turn whose message says `[[mock gate="x"]]` waits until the test opens x. */
export function gates(mockUrl: string) {
  return {
    /** Resolves once `n` requests wait at the gate (the mock's own wait, no polling). */
    async waiting(name: string, n = 1): Promise<void> {
      const r = await fetch(`${mockUrl}/__mock/gates/${name}?waiting=${n}&timeout_ms=30000`);
      const body = (await r.json()) as { waiting: number; timed_out?: boolean };
      if (body.timed_out) throw new Error(`nobody reached gate ${name} (waiting: ${body.waiting})`);
    },
    async open(name: string): Promise<void> {
      const r = await fetch(`${mockUrl}/__mock/gates/${name}/open`, { method: 'POST' });
      if (!r.ok) throw new Error(`opening gate ${name}: ${r.status}`);
    },
  };
}

const AXE = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

interface AxeResult {
  violations: { id: string; impact: string | null; help: string; nodes: { target: unknown[] }[] }[];
}

/** axe-core's violations of impact "critical" on the page as it is now. */
export async function criticalViolations(page: Page): Promise<string[]> {
  await page.addScriptTag({ content: AXE });
  const result = await page.evaluate(async () => {
    const axe = (window as unknown as { axe: { run: (ctx: Document) => Promise<unknown> } }).axe;
    return JSON.stringify(await axe.run(document));
  });
  const parsed = JSON.parse(result) as AxeResult;
  return parsed.violations.filter((v) => v.impact === 'critical').map((v) => `${v.id}: ${v.help} (${JSON.stringify(v.nodes.map((n) => n.target))})`);
}

/** axe-core's violations of impact "serious" or "critical" on the page as it is now. */
export async function seriousViolations(page: Page): Promise<string[]> {
  await page.addScriptTag({ content: AXE });
  const result = await page.evaluate(async () => {
    const axe = (window as unknown as { axe: { run: (ctx: Document) => Promise<unknown> } }).axe;
    return JSON.stringify(await axe.run(document));
  });
  const parsed = JSON.parse(result) as AxeResult;
  return parsed.violations
    .filter((v) => v.impact === 'critical' || v.impact === 'serious')
    .map((v) => `${v.id}: ${v.help} (${JSON.stringify(v.nodes.map((n) => n.target))})`);
}

/** Writes SHOTS/NAME.png; `mask` covers what must not be committed (a key, even a throwaway one). */
export async function screenshot(page: Page, name: string, mask: Locator[] = []): Promise<void> {
  await mkdir(SHOTS, { recursive: true });
  await page.screenshot({ path: path.join(SHOTS, `${name}.png`), mask });
}

/** The text of the assistant messages on the page (durable ones, in order). */
export async function assistantTexts(page: Page): Promise<string[]> {
  return await page.locator('article.msg-assistant:not(.streaming) .markdown').allInnerTexts();
}

/** Writes chats of `n` alternating user/assistant messages straight into Postgres; answers their ids and newest message ids. */
export async function insertLongChats(pgUrl: string, ownerId: string, titles: string[], n: number): Promise<{ id: string; lastId: number }[]> {
  const db = new pg.Client({ connectionString: pgUrl });
  await db.connect();
  try {
    const out = [];
    for (const title of titles) {
      const id = (await db.query<{ id: string }>('INSERT INTO chats (owner_id, title) VALUES ($1, $2) RETURNING id', [ownerId, title])).rows[0]?.id ?? '';
      const r = await db.query<{ id: string }>(
        `INSERT INTO chat_messages (chat_id, role, content)
         SELECT $1, (CASE WHEN i % 2 = 1 THEN 'user' ELSE 'assistant' END)::chat_message_role,
                jsonb_build_array(jsonb_build_object('type', 'text', 'text', 'Message number ' || i || ' with **some** Markdown'))
         FROM generate_series(1, $2::int) AS i RETURNING id`,
        [id, n],
      );
      out.push({ id, lastId: Math.max(...r.rows.map((x) => Number(x.id))) });
    }
    return out;
  } finally {
    await db.end();
  }
}

/**
 * Waits for `locator`; when it does not come, fails with what the page showed instead (its text and URL) and what
 * `watchConsole` saw (console errors, failed requests), so a failure in CI says whether the page was loading, showed an
 * error or went to the login. The requests still unanswered and the stack's state are printed for every failed test
 * (browser-trouble.ts).
 */
export async function waitOrTell(page: Page, locator: Locator, seen: PageTrouble = { errors: [] }): Promise<void> {
  try {
    await locator.waitFor();
  } catch (e) {
    const shown = await page
      .locator('main, body')
      .first()
      .innerText({ timeout: 2000 })
      .catch(() => '(unreadable)');
    throw new Error(
      [
        `${e instanceof Error ? e.message.split('\n')[0] : String(e)}; the page at ${page.url()} showed: ${shown.slice(0, 600)}`,
        `console errors and failed requests: ${seen.errors.join(' | ') || 'none'}`,
      ].join('\n'),
    );
  }
}

/** What went wrong in a page so far: console errors and failed requests. */
export interface PageTrouble {
  errors: string[];
}

/** Watches a page's console and failed requests, for waitOrTell. */
export function watchConsole(page: Page): PageTrouble {
  const seen: PageTrouble = { errors: [] };
  page.on('console', (m) => {
    if (m.type() === 'error') seen.errors.push(m.text().slice(0, 200));
  });
  page.on('requestfailed', (r) => {
    seen.errors.push(`${r.method()} ${r.url()} failed: ${r.failure()?.errorText ?? '?'}`);
  });
  return seen;
}

/**
 * An init script: notes in the page when the message `lastId` enters the DOM, and when the last click was (times
 * taken in the page, so Playwright's own polling does not add to them).
 */
export function watchNewest(lastId: number): void {
  const w = window as unknown as { __shown?: number; __clicked?: number };
  document.addEventListener('click', (e) => (w.__clicked = e.timeStamp), true);
  new MutationObserver((_m, obs) => {
    if (document.querySelector(`article[data-message-id="${lastId}"]`)) {
      w.__shown = performance.now();
      obs.disconnect();
    }
  }).observe(document, { childList: true, subtree: true });
}

/** What watchNewest noted: page times in ms (shown: Infinity when it never happened). */
export async function shownAt(page: Page): Promise<{ shown: number; clicked: number }> {
  return await page.evaluate(() => {
    const w = window as unknown as { __shown?: number; __clicked?: number };
    return { shown: w.__shown ?? Infinity, clicked: w.__clicked ?? 0 };
  });
}

/**
 * An init script standing in for PushManager.subscribe (headless chromium has no push service to subscribe with;
 * Chrome's is FCM) with a subscription to the test's own endpoint. Permission, service worker, VAPID key and the
 * API call stay real.
 */
export function stubPushManager({ endpoint, p256dh }: { endpoint: string; p256dh: string }): void {
  const bytes = (b64: string) => Uint8Array.from(atob(b64), (c) => c.charCodeAt(0)).buffer;
  let current: unknown = null;
  const sub = {
    endpoint,
    expirationTime: null,
    getKey: (name: string) => bytes(name === 'p256dh' ? p256dh : btoa('0123456789abcdef')),
    unsubscribe: () => {
      current = null;
      return Promise.resolve(true);
    },
  };
  PushManager.prototype.subscribe = function () {
    current = sub;
    return Promise.resolve(sub as unknown as PushSubscription);
  };
  PushManager.prototype.getSubscription = () => Promise.resolve(current as PushSubscription | null);
}

/** A new chat made through the UI's form, with the default model; resolves on the chat's page. */
export async function newChat(page: Page, text: string): Promise<void> {
  await page.goto('/');
  await page.getByLabel('Message', { exact: true }).fill(text);
  await page.getByRole('button', { name: 'Start chat' }).click();
  await page.waitForURL(/\/chats\/[0-9a-f-]{36}$/);
}

/** Renames the open chat through its header. */
export async function renameChat(page: Page, title: string): Promise<void> {
  await page.getByRole('button', { name: 'Rename', exact: true }).click();
  await page.getByLabel('Title', { exact: true }).fill(title);
  await page.getByRole('button', { name: 'Save', exact: true }).click();
  await page.getByRole('heading', { name: title, level: 1 }).waitFor();
}

export const streaming = (page: Page) => page.locator('article.streaming .markdown');
export const statusBadge = (page: Page) => page.locator('.status-line .badge');


/**
 * Routes the page's chat stream sockets through Playwright's WebSocket route (a proxy in front of the page). The test
 * closes the first one (`sockets[0].close`: the page gets the close frame as from the server, and the route closes
 * the server's side); what the server sends on later ones is held until `release()`, so the page's stream is not
 * back (it counts as connected on its first frame) until the test has seen it away.
 */
export async function routeStreams(page: Page): Promise<{ sockets: WebSocketRoute[]; release: () => void }> {
  const sockets: WebSocketRoute[] = [];
  let release = () => {};
  const released = new Promise<void>((r) => (release = r));
  await page.routeWebSocket(/\/stream\?/, (ws) => {
    const server = ws.connectToServer();
    sockets.push(ws);
    if (sockets.length === 1) return;
    const held: (string | Buffer)[] = [];
    let open = false;
    server.onMessage((m) => {
      if (open) ws.send(m);
      else held.push(m);
    });
    void released.then(() => {
      open = true;
      for (const m of held) ws.send(m);
    });
  });
  return { sockets, release };
}
