/**
 * The browser tests' own plumbing: newContext's Node-side API calls each go on a connection of their own, so none is
 * written to a kept-alive connection that workerd closes after 5 s idle (see ownConnections in web-helpers.ts).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium, newContext } from './web-helpers.js';

let browser: Browser;
let server: http.Server;
let base = '';
const seen: { connection: string | undefined; socket: number; kept?: string }[] = [];

beforeAll(async () => {
  let sockets = 0;
  const ids = new WeakMap<object, number>();
  server = http.createServer((req, res) => {
    const kept = req.headers['x-kept'];
    seen.push({ connection: req.headers.connection, socket: ids.get(req.socket) ?? -1, ...(typeof kept === 'string' ? { kept } : {}) });
    res.setHeader('content-type', 'application/json');
    res.end('{}');
  });
  // A server that keeps connections alive as long as the client wants (workerd keeps them 5 s).
  server.keepAliveTimeout = 60_000;
  server.on('connection', (socket) => ids.set(socket, sockets++));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  browser = await launchChromium();
}, 60_000);

afterAll(async () => {
  await browser.close();
  await new Promise((resolve) => server.close(resolve));
});

describe('browser test helpers', () => {
  it("newContext's API calls (context.request and page.request) each open a connection of their own", async () => {
    const context = await newContext(browser, { baseURL: base });
    const page = await context.newPage();
    expect((await context.request.get('/a')).ok()).toBe(true);
    expect((await context.request.post('/b', { data: { x: 1 }, headers: { 'x-kept': 'yes' } })).ok()).toBe(true);
    expect((await context.request.fetch('/c', { method: 'PUT', data: {} })).ok()).toBe(true);
    expect((await page.request.delete('/d')).ok()).toBe(true);
    expect((await context.request.patch('/e')).ok()).toBe(true);
    await context.close();
    // A call's own headers are kept.
    expect(seen).toEqual([0, 1, 2, 3, 4].map((socket) => ({ connection: 'close', socket, ...(socket === 1 ? { kept: 'yes' } : {}) })));
  });
});
