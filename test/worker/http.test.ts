import { createExecutionContext, createScheduledController, waitOnExecutionContext } from 'cloudflare:test';
import { env } from 'cloudflare:workers';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import worker from '../../functions/index';
import { runScheduled } from '../../functions/scheduled';
import { call, ErrorBody, hangingDbEnv, makeUser, unreachableDbEnv } from './helpers';

describe('HTTP conventions', () => {
  it('answers unknown routes with a JSON 404', async () => {
    const r = await call('GET', '/api/v2/nope');
    expect(r.status).toBe(404);
    expect(ErrorBody.parse(r.body).message).toMatch(/No route/);
  });

  it('serves the OpenAPI 3.1 document generated from the route schemas', async () => {
    const r = await call('GET', '/api/v2/openapi.json');
    expect(r.status).toBe(200);
    const doc = z
      .object({ openapi: z.string(), paths: z.record(z.string(), z.record(z.string(), z.unknown())) })
      .parse(r.body);
    expect(doc.openapi).toBe('3.1.0');
    for (const p of ['/api/v2/users/first', '/api/v2/users/login', '/api/v2/users/me/keys/{id}', '/healthz']) {
      expect(Object.keys(doc.paths)).toContain(p);
    }
    expect(Object.keys(doc.paths['/api/v2/users/me/keys/{id}'] ?? {})).toContain('delete');
  });

  it('renders the docs page', async () => {
    const r = await call('GET', '/api/v2/docs');
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toMatch(/text\/html/);
    expect(r.text).toContain('/api/v2/openapi.json');
  });

  it('healthz is ok with Postgres up', async () => {
    const r = await call('GET', '/healthz');
    expect(r.status).toBe(200);
    expect(r.body).toEqual({ status: 'ok' });
  });
});

describe('database down', () => {
  it('healthz and authenticated routes answer 503 when Postgres refuses connections', async () => {
    const e = unreachableDbEnv();
    const h = await call('GET', '/healthz', { env: e });
    expect(h.status).toBe(503);
    expect(z.object({ status: z.literal('unavailable'), message: z.string(), reason: z.string() }).parse(h.body).reason).toMatch(
      /connect/,
    );
    // Authentication is answered by its directory object; the list then needs the Worker's own connection.
    const u = await makeUser();
    const list = await call('GET', '/api/v2/chats', { env: e, token: u.token });
    expect(list.status).toBe(503);
    const err = ErrorBody.parse(list.body);
    expect(err.message).toMatch(/database is unavailable/i);
    expect(list.text).not.toMatch(/127\.0\.0\.1|postgres:\/\/|ECONNREFUSED|stack/i);
  });

  it('a database that accepts but never answers is a 503 within the connect timeout, not a hang', async () => {
    const started = Date.now();
    const r = await call('POST', '/api/v2/users/login', { env: hangingDbEnv(), body: { email: 'a@b.co', password: 'x' } });
    expect(r.status).toBe(503);
    expect(Date.now() - started).toBeLessThan(5000);
  });

  it('a missing DATABASE_URL is a 503, not a crash', async () => {
    const r = await call('GET', '/healthz', { env: { ...env, DATABASE_URL: '' } });
    expect(r.status).toBe(503);
  });
});

describe('Durable Object and cron wiring', () => {
  it('reaches a ChatRoom over RPC', async () => {
    const stub = env.CHAT_ROOM.getByName(crypto.randomUUID());
    expect(await stub.stats()).toEqual({
      cacheCatchups: 0,
      dbCatchups: 0,
      fullRefreshes: 0,
      historyReads: 0,
      sockets: 0,
      cached: 0,
      cachedBytes: 0,
      compactions: 0,
      cachePages: 0,
      dbPages: 0,
      outbox: 0,
    });
  });

  it('runs the scheduled handler through the Worker entry', async () => {
    const ctx = createExecutionContext();
    worker.scheduled(createScheduledController({ scheduledTime: Date.now(), cron: '*/10 * * * *' }), env, ctx);
    await waitOnExecutionContext(ctx);
  });

  it('reports each scheduled job, and a database outage fails the job without throwing', async () => {
    const ok = await runScheduled(env, new Date('2026-11-21T00:00:00Z'));
    expect(ok.at).toBe('2026-11-21T00:00:00.000Z');
    expect(ok.jobs['reseal_provider_keys']).toMatchObject({ ok: true, detail: 'resealed 0' });
    const down = await runScheduled(unreachableDbEnv(), new Date());
    expect(down.jobs['reseal_provider_keys']?.ok).toBe(false);
  });

  it('authenticated routes work end to end for a member', async () => {
    const u = await makeUser();
    const r = await call('GET', '/api/v2/users/me', { token: u.token });
    expect(r.status).toBe(200);
  });
});
