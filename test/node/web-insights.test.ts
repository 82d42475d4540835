// Callbacks given to page.evaluate run in the browser: they use DOM types.
/// <reference lib="dom" />
/**
 * The owner's Insights screen in chromium, from real data: turns made through the mock LLM (two answered, one failed),
 * then /insights draws its four charts (uPlot canvases) from GET /insights, with the figures in their accessible
 * names; its chunk (and uPlot) loads only on that screen; members get no link. Screenshot: insights.png.
 */
import { createClient } from '@chatd-edge/sdk';
import type { Browser, BrowserContext } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import type { LocalStack } from '../../scripts/lib/scaletest-stack.mjs';
import { screenshot, newContext, startBrowserAndStack, stopBrowserAndStack } from './web-helpers.js';

const OWNER = { email: 'insights@example.com', username: 'insights', password: 'insights owner 1' };

let stack: LocalStack;
let browser: Browser;
let owner: BrowserContext;
let token = '';

beforeAll(async () => {
  ({ browser, stack } = await startBrowserAndStack());
  owner = await newContext(browser, { baseURL: stack.url, viewport: { width: 1280, height: 900 } });
  const r = await owner.request.post('/api/v2/users/first', { data: OWNER });
  expect(r.status()).toBe(201);
  token = ((await r.json()) as { session_token: string }).session_token;
}, 180_000);

afterAll(async () => {
  await stopBrowserAndStack(browser, stack);
}, 90_000);

/** A chat whose one turn has ended (answered or failed), read over its stream: no polling. */
async function turn(text: string): Promise<'waiting' | 'error'> {
  const api = createClient({ baseUrl: stack.url, token, WebSocket });
  const chat = await api.createChat({ content: text });
  const stream = api.stream(chat.id);
  try {
    await stream.until((s) => s.status?.status === 'error' || (s.status?.status === 'waiting' && s.messages.some((m) => m.role === 'assistant')), { timeoutMs: 60_000 });
    return stream.status?.status === 'error' ? 'error' : 'waiting';
  } finally {
    await stream.close();
  }
}

describe('web UI: Insights', () => {
  it('draws turns and errors per day, latency per model, cost per model and per user from GET /insights', async () => {
    expect(await turn('first question for insights')).toBe('waiting');
    expect(await turn('second question for insights')).toBe('waiting');
    expect(await turn('this one fails [[mock error_status=400]]')).toBe('error');

    const page = await owner.newPage();
    const scripts: string[] = [];
    page.on('request', (r) => {
      if (r.resourceType() === 'script') scripts.push(new URL(r.url()).pathname);
    });
    await page.goto('/');
    await page.getByRole('link', { name: 'Insights' }).waitFor();
    expect(scripts.some((s) => s.includes('Insights'))).toBe(false);

    await page.getByRole('link', { name: 'Insights' }).click();
    await page.getByRole('heading', { name: 'Insights', level: 1 }).waitFor();
    expect(await page.title()).toBe('Insights · chatd-edge');
    expect(scripts.some((s) => s.includes('Insights'))).toBe(true);
    await page.getByText('The last 30 days: 3 model calls, 1 failed.').waitFor();

    const figures = page.locator('figure.insights-chart');
    expect(await figures.locator('figcaption').allInnerTexts()).toEqual(['Turns and errors per day', 'Latency per model (total, ms)', 'Cost per model', 'Cost per user']);
    // Each chart is drawn: a uPlot canvas of real size, and its legend names its series.
    for (let i = 0; i < 4; i++) {
      const canvas = figures.nth(i).locator('canvas');
      await canvas.waitFor();
      const size = await canvas.evaluate((c) => ({ w: (c as HTMLCanvasElement).width, h: (c as HTMLCanvasElement).height }));
      expect(size.w).toBeGreaterThan(100);
      expect(size.h).toBeGreaterThan(100);
    }
    const today = new Date().toISOString().slice(0, 10);
    const names = await figures.locator('[role="img"]').evaluateAll((els) => els.map((e) => e.getAttribute('aria-label')));
    expect(names[0]).toBe(`Turns and errors per day: ${today} turns 3, errors 1`);
    expect(names[1]).toMatch(/^Latency per model \(total, ms\): mock-echo p95 \d+(\.\d+)?, p50 \d+(\.\d+)?$/);
    expect(names[2]).toBe('Cost per model: mock-echo cost 0');
    expect(names[3]).toBe('Cost per user: insights cost 0');
    expect(await figures.nth(0).locator('.u-legend').innerText()).toContain('errors');
    await screenshot(page, 'insights');
    await page.close();
  });

  it('a chat has a "Debug" drawer for owners listing its debug runs', async () => {
    const put = await owner.request.put('/api/v2/chats/config/debug-runs', { data: { debug_runs: 'errors', retention_days: 7 } });
    expect(put.status()).toBe(200);
    const api = createClient({ baseUrl: stack.url, token, WebSocket });
    const chat = await api.createChat({ content: 'debug me [[mock error_status=400]]' });
    const stream = api.stream(chat.id);
    try {
      await stream.until((s) => s.status?.status === 'error', { timeoutMs: 60_000 });
    } finally {
      await stream.close();
    }
    const page = await owner.newPage();
    await page.goto(`/chats/${chat.id}`);
    await page.locator('.debug-drawer > summary', { hasText: 'Debug' }).click();
    const runs = page.getByRole('list', { name: 'Debug runs' }).locator(':scope > li');
    await runs.first().waitFor();
    expect(await runs.count()).toBe(1);
    expect(await runs.first().locator('summary').innerText()).toMatch(/ · error: invalid_request · \d+ ms · 1 attempt$/);
    await runs.first().locator('summary').click();
    const shown = await runs.first().locator('pre').innerText();
    expect(shown).toContain('"debug me [[mock error_status=400]]"');
    await page.close();
  });

  it('is for owners: a member sees no link, and the screen says so', async () => {
    const api = createClient({ baseUrl: stack.url, token });
    await api.createUser({ email: 'member@example.com', username: 'member', password: 'member password 1' });
    const ctx = await newContext(browser, { baseURL: stack.url });
    const login = await ctx.request.post('/api/v2/users/login', { data: { email: 'member@example.com', password: 'member password 1' } });
    expect(login.status()).toBe(201);
    const { session_token } = (await login.json()) as { session_token: string };
    await ctx.addCookies([{ name: 'session_token', value: session_token, url: stack.url }]);
    const page = await ctx.newPage();
    await page.goto('/insights');
    await page.getByRole('alert').filter({ hasText: 'Only owners can open Insights.' }).waitFor();
    expect(await page.getByRole('link', { name: 'Insights' }).count()).toBe(0);
    await ctx.close();
  });
});
