/** /api/v2/auth: the sign-in methods, single sign-on (OpenID Connect) settings, and the SSO login and callback. */
import { createRoute, z } from '@hono/zod-openapi';
import { deleteCookie, getCookie, setCookie } from 'hono/cookie';
import { authorize } from '../authz';
import { settings } from '../env';
import { errorResponses, jsonBody, jsonResponse, router } from '../lib/openapi';
import { badRequest } from '../core/errors';
import { AuthMethods, OidcConfig, OidcConfigPut, OidcTestResult } from '../core/shapes/sso';
import { audit, requestIp } from '../services/audit';
import { loadOidcRow, putOidcConfig, testOidc, toOidcConfig } from '../services/oidc-config';
import { FLOW_COOKIE, FLOW_TTL_SECONDS, finishLogin, RedirectPath, SsoFailure, startLogin } from '../services/oidc-login';

const manage = authorize('deployment.manage');
const FLOW_COOKIE_PATH = '/api/v2/auth/oidc';
const failRedirect = (code: string) => `/login?error=${encodeURIComponent(code)}`;

const app = router()
  .openapi(
    createRoute({
      method: 'get',
      path: '/methods',
      summary: 'How one may sign in here (anyone): password, and single sign-on when configured',
      security: [],
      responses: { 200: jsonResponse(AuthMethods, 'The sign-in methods'), ...errorResponses(503) },
    }),
    async (c) => {
      const row = await loadOidcRow(c.var.db);
      return c.json({ password: true, oidc: row ? { enabled: row.enabled, display_name: row.display_name } : null }, 200);
    },
  )
  .openapi(
    createRoute({
      method: 'get',
      path: '/oidc',
      summary: 'Single sign-on settings (owner); the client secret is write-only',
      middleware: manage,
      responses: { 200: jsonResponse(OidcConfig.nullable(), 'The settings, or null when never set'), ...errorResponses(401, 403, 503) },
    }),
    async (c) => {
      const row = await loadOidcRow(c.var.db);
      return c.json(row ? toOidcConfig(row) : null, 200);
    },
  )
  .openapi(
    createRoute({
      method: 'put',
      path: '/oidc',
      summary: 'Set single sign-on (owner); the issuer is https (except with OIDC_ALLOW_INSECURE_ISSUER=true)',
      middleware: manage,
      request: { body: jsonBody(OidcConfigPut) },
      responses: { 200: jsonResponse(OidcConfig, 'The settings'), ...errorResponses(400, 401, 403, 503) },
    }),
    async (c) => {
      const s = settings(c.env);
      const a = c.var.actor;
      const out = await putOidcConfig(c.var.db, c.env, c.req.valid('json'), s.OIDC_ALLOW_INSECURE_ISSUER, { id: a.userId, email: a.email }, requestIp(c.req.raw));
      return c.json(out, 200);
    },
  )
  .openapi(
    createRoute({
      method: 'post',
      path: '/oidc/test',
      summary: 'Test the single sign-on settings (owner): runs discovery and says what is wrong',
      middleware: manage,
      responses: { 200: jsonResponse(OidcTestResult, 'What is wrong, if anything'), ...errorResponses(401, 403, 503) },
    }),
    async (c) => c.json(await testOidc(await loadOidcRow(c.var.db), settings(c.env).OIDC_ALLOW_INSECURE_ISSUER), 200),
  )
  .openapi(
    createRoute({
      method: 'get',
      path: '/oidc/login',
      summary: 'Start single sign-on: 302 to the provider (code flow, PKCE S256, state, nonce)',
      security: [],
      request: { query: z.object({ redirect: z.string().optional() }) },
      responses: { 302: { description: 'To the provider, or to /login?error=<code>' }, ...errorResponses(400, 503) },
    }),
    async (c) => {
      const r = RedirectPath.safeParse(c.req.valid('query').redirect ?? '/');
      if (!r.success) throw badRequest('redirect must be a path on this origin.');
      const s = settings(c.env);
      const origin = new URL(c.req.url).origin;
      try {
        const out = await startLogin(c.var.db, { allowInsecure: s.OIDC_ALLOW_INSECURE_ISSUER, origin }, r.data);
        setCookie(c, FLOW_COOKIE, out.browser, {
          path: FLOW_COOKIE_PATH,
          httpOnly: true,
          sameSite: 'Lax',
          secure: origin.startsWith('https:'),
          maxAge: FLOW_TTL_SECONDS,
        });
        return c.redirect(out.url, 302);
      } catch (e) {
        if (e instanceof SsoFailure) return c.redirect(failRedirect(e.code), 302);
        throw e;
      }
    },
  )
  .openapi(
    createRoute({
      method: 'get',
      path: '/oidc/callback',
      summary: "The provider's redirect: verifies and signs in (session_token cookie), or 302 to /login?error=<code>",
      security: [],
      request: { query: z.object({ state: z.string().optional(), code: z.string().optional() }).loose() },
      responses: { 302: { description: 'Signed in (to the saved path), or to /login?error=<code>' }, ...errorResponses(400, 503) },
    }),
    async (c) => {
      const s = settings(c.env);
      const url = new URL(c.req.url);
      const ip = requestIp(c.req.raw);
      const browser = getCookie(c, FLOW_COOKIE);
      deleteCookie(c, FLOW_COOKIE, { path: FLOW_COOKIE_PATH });
      try {
        const out = await finishLogin(c.env, c.var.db, s, { allowInsecure: s.OIDC_ALLOW_INSECURE_ISSUER, origin: url.origin }, url, browser, ip);
        setCookie(c, 'session_token', out.token, {
          path: '/',
          httpOnly: true,
          sameSite: 'Lax',
          secure: url.protocol === 'https:',
          maxAge: s.SESSION_LIFETIME_SECONDS,
        });
        return c.redirect(out.redirect, 302);
      } catch (e) {
        if (!(e instanceof SsoFailure)) throw e;
        await audit(c.var.db, { action: 'user.login_failed', actor: null, ip, target_type: null, target_id: null, detail: { method: 'oidc', reason: e.code } });
        return c.redirect(failRedirect(e.code), 302);
      }
    },
  );

export default app;
