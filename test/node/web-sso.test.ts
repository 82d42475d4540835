// Callbacks given to page.evaluate run in the browser: they use DOM types.
/// <reference lib="dom" />
/**
 * Single sign-on in the web UI, in chromium against the whole local stack (`npm run dev`, which starts the local
 * OpenID provider and seeds it as this deployment's SSO): "Sign in with Local provider" on the login page, the
 * provider's page, a test user picked, and the chat list. Every wait is on a DOM state.
 */
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LocalStack } from '../../scripts/lib/scaletest-stack.mjs';
import { newContext, startBrowserAndStack, stopBrowserAndStack } from './web-helpers.js';

let stack: LocalStack;
let browser: Browser;

beforeAll(async () => {
  ({ browser, stack } = await startBrowserAndStack());
}, 180_000);

afterAll(async () => {
  await stopBrowserAndStack(browser, stack);
}, 90_000);

describe('web UI: single sign-on', () => {
  it('signs in through the local provider and lands in the chat list as a new member', async () => {
    const owner = await newContext(browser, { baseURL: stack.url });
    const setup = await owner.request.post('/api/v2/users/first', { data: { email: 'sso-owner@example.com', username: 'ssoowner', password: 'correct horse battery' } });
    expect(setup.status()).toBe(201);
    await owner.close();

    const ctx = await newContext(browser, { baseURL: stack.url, viewport: { width: 1280, height: 800 } });
    const page = await ctx.newPage();
    await page.goto('/login');
    await page.getByRole('link', { name: 'Sign in with Local provider' }).click();
    await page.getByRole('heading', { name: 'Local OpenID provider' }).waitFor();
    await page.getByRole('button', { name: /Sign in as Alice Local/ }).click();
    await page.getByRole('heading', { name: 'New chat' }).waitFor();
    const me = (await (await page.request.get('/api/v2/users/me')).json()) as { email: string; roles: string[] };
    expect(me).toMatchObject({ email: 'alice@example.com', roles: ['member'] });
    await ctx.close();
  });
});
