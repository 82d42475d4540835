/**
 * Every route of the OpenAPI document, called without a credential: 401 everywhere, except the routes named public
 * here. A new route that forgets `authorize(...)` fails this test (it is walked from the document, not listed by hand).
 */
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { call, ErrorBody } from './helpers';

/** Routes anyone may call, and why. */
const PUBLIC = new Set([
  // First-user setup and login: how a credential is obtained.
  'POST /api/v2/users/first',
  // Whether the first user is still to be created (answers only a boolean): the web UI opens on Setup then.
  'GET /api/v2/users/first',
  'POST /api/v2/users/login',
  // The deployment's VAPID public key: a browser needs it before it has subscribed anything.
  'GET /api/v2/webpush/vapid',
  // Liveness, for load balancers and the deploy check.
  'GET /healthz',
  // A share link's read-only snapshot: the token in the path is the credential (rate-limited per address).
  'GET /api/v2/shared/{token}',
  // Single sign-on (issue 29): which sign-in methods exist (for the login page), and the OIDC redirect and callback,
  // which are how a credential is obtained (the callback's credential is the provider's code with our state).
  'GET /api/v2/auth/methods',
  'GET /api/v2/auth/oidc/login',
  'GET /api/v2/auth/oidc/callback',
  // A file of a share link's snapshot (the link's token is the credential, as for the snapshot).
  'GET /api/v2/shared/{token}/files/{file_id}',
]);

const Doc = z.object({ paths: z.record(z.string(), z.record(z.string(), z.unknown())) });
const METHODS = new Set(['get', 'post', 'put', 'patch', 'delete']);

/** A value for a path parameter that is well-formed, so a route cannot answer 400 before authenticating. */
function sample(param: string): string {
  if (param === 'message_id') return '1';
  if (param === 'token') return 'x'.repeat(43);
  return crypto.randomUUID();
}

describe('authentication on every route', () => {
  it('answers 401 without a credential on every route of the OpenAPI document but the public ones', async () => {
    const doc = Doc.parse((await call('GET', '/api/v2/openapi.json')).body);
    const routes = Object.entries(doc.paths).flatMap(([path, ops]) =>
      Object.keys(ops)
        .filter((m) => METHODS.has(m))
        .map((m) => ({ method: m.toUpperCase(), path })),
    );
    expect(routes.length).toBeGreaterThan(50);
    const wrong: string[] = [];
    for (const r of routes) {
      const name = `${r.method} ${r.path}`;
      const url = r.path.replace(/\{([^}]+)\}/g, (_, p: string) => sample(p));
      const res = await call(r.method, url, r.method === 'GET' || r.method === 'DELETE' ? {} : { body: {} });
      if (PUBLIC.has(name)) {
        if (res.status === 401) wrong.push(`${name}: 401, but it is public`);
        continue;
      }
      if (res.status !== 401) wrong.push(`${name}: ${res.status}`);
      else ErrorBody.parse(res.body);
    }
    expect(wrong).toEqual([]);
    // Every public route still exists (a name here that matches no route would exempt nothing, silently).
    expect([...PUBLIC].filter((p) => !routes.some((r) => `${r.method} ${r.path}` === p))).toEqual([]);
  });
});
