// @ts-check
/**
 * A local OpenID provider (the certified `oidc-provider` library) for `npm run dev` and the tests: discovery, JWKS,
 * the authorization code flow with PKCE, ID tokens signed RS256 — a real provider on loopback, nothing stubbed.
 *
 * Sign-in page: GET /interaction/<uid> lists the test users; pick one (no password: it is a local provider). An
 * authorization request with `login_hint=<user id>` signs that user in at once (the tests use it).
 *
 * Test users (email → groups): alice@example.com → [engineering, staff]; bob@example.com → [staff];
 * carol@other.test → [staff] (a domain outside a typical `email_domains`); dave@example.com has an unverified email.
 *
 * Control (loopback only; refuses requests with an Origin header):
 *   POST /__control/users/<id>   JSON `{groups?, email?, email_verified?}`: changes a user (group removal tests).
 *   POST /__control/users        JSON `{id, email, email_verified, groups}`: adds a user.
 *   POST /__control/fault        JSON `{kind}`: the next token response's ID token is tampered with:
 *                                `bad_signature` (signed by another key under the same kid), `wrong_aud`, `wrong_iss`,
 *                                `expired`, `wrong_nonce` (re-signed with the provider's own key).
 */
import http from 'node:http';
import { randomBytes, randomUUID } from 'node:crypto';
import { Provider } from 'oidc-provider';
import { SignJWT, exportJWK, generateKeyPair, decodeJwt } from 'jose';
import { readBody } from './read-body.mjs';
import { listenOn } from './ports.mjs';

export const LOCAL_CLIENT_ID = 'chatd-local';
export const LOCAL_CLIENT_SECRET = 'chatd-local-secret-not-for-production';

/** @typedef {{ id: string, email: string, email_verified: boolean, name: string, groups: string[] }} LocalUser */

/** @returns {LocalUser[]} */
export function defaultUsers() {
  return [
    { id: 'alice', email: 'alice@example.com', email_verified: true, name: 'Alice Local', groups: ['engineering', 'staff'] },
    { id: 'bob', email: 'bob@example.com', email_verified: true, name: 'Bob Local', groups: ['staff'] },
    { id: 'carol', email: 'carol@other.test', email_verified: true, name: 'Carol Other', groups: ['staff'] },
    { id: 'dave', email: 'dave@example.com', email_verified: false, name: 'Dave Unverified', groups: [] },
  ];
}

const FAULTS = new Set(['bad_signature', 'wrong_aud', 'wrong_iss', 'expired', 'wrong_nonce']);

/**
 * @param {{ port?: number, host?: string, redirectUris: string[], users?: LocalUser[] }} opts
 * @returns {Promise<{ url: string, issuer: string, clientId: string, clientSecret: string, users: Map<string, LocalUser>, close: () => Promise<void> }>}
 */
export async function startOidcProvider(opts) {
  const host = opts.host ?? '127.0.0.1';
  const users = new Map((opts.users ?? defaultUsers()).map((u) => [u.id, { ...u }]));
  /** @type {string | null} */
  let fault = null;

  const { privateKey } = await generateKeyPair('RS256', { extractable: true });
  const jwk = { ...(await exportJWK(privateKey)), kid: 'local-1', alg: 'RS256', use: 'sig' };
  const foreign = (await generateKeyPair('RS256', { extractable: true })).privateKey;

  const server = http.createServer();
  const port = await listenOn(server, host, opts.port ?? 0);
  const issuer = `http://${host}:${port}`;

  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: LOCAL_CLIENT_ID,
        client_secret: LOCAL_CLIENT_SECRET,
        redirect_uris: opts.redirectUris,
        grant_types: ['authorization_code'],
        response_types: ['code'],
        token_endpoint_auth_method: 'client_secret_basic',
      },
    ],
    jwks: { keys: [jwk] },
    cookies: { keys: [randomBytes(32).toString('base64url')] },
    pkce: { required: () => true },
    scopes: ['openid', 'email', 'profile', 'groups'],
    claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'], groups: ['groups'] },
    // Scope claims go into the ID token too (as Keycloak or Entra ID put groups there), not only into /me.
    conformIdTokenClaims: false,
    features: { devInteractions: { enabled: false } },
    interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
    ttl: { IdToken: 600, AccessToken: 600, AuthorizationCode: 60, Interaction: 600, Session: 3600, Grant: 3600 },
    findAccount: (_ctx, id) => {
      const u = users.get(id);
      if (!u) return undefined;
      return {
        accountId: id,
        claims: () => ({ sub: id, email: u.email, email_verified: u.email_verified, name: u.name, groups: [...u.groups] }),
      };
    },
  });
  provider.proxy = false;

  // A fault asked for by a test: the next token response carries an ID token that a client must refuse.
  provider.use(async (ctx, next) => {
    await next();
    if (ctx.path !== '/token' || fault === null || ctx.status !== 200) return;
    const kind = fault;
    fault = null;
    const body = /** @type {Record<string, unknown>} */ (ctx.body);
    const idToken = typeof body.id_token === 'string' ? body.id_token : '';
    const claims = decodeJwt(idToken);
    const now = Math.floor(Date.now() / 1000);
    if (kind === 'wrong_aud') claims.aud = 'someone-else';
    if (kind === 'wrong_iss') claims.iss = 'http://evil.invalid';
    if (kind === 'expired') Object.assign(claims, { iat: now - 7200, exp: now - 3600 });
    if (kind === 'wrong_nonce') claims.nonce = 'not-the-nonce';
    const key = kind === 'bad_signature' ? foreign : privateKey;
    body.id_token = await new SignJWT(claims).setProtectedHeader({ alg: 'RS256', kid: 'local-1' }).sign(key);
    ctx.body = body;
  });

  const callback = provider.callback();

  /** @param {http.IncomingMessage} req @param {http.ServerResponse} res @param {string} accountId */
  async function finish(req, res, accountId) {
    const details = await provider.interactionDetails(req, res);
    const clientId = String(details.params.client_id ?? '');
    const grant = new provider.Grant({ accountId, clientId });
    grant.addOIDCScope(String(details.params.scope ?? 'openid'));
    const grantId = await grant.save();
    await provider.interactionFinished(req, res, { login: { accountId }, consent: { grantId } }, { mergeWithLastSubmission: false });
  }

  /** @param {http.ServerResponse} res @param {number} status @param {unknown} body */
  const json = (res, status, body) => res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));

  server.on('request', (req, res) => {
    const url = new URL(req.url ?? '/', issuer);
    const handle = async () => {
      if (url.pathname.startsWith('/__control/')) {
        if (req.headers.origin !== undefined || req.method !== 'POST') return json(res, 403, { error: 'forbidden' });
        const body = JSON.parse((await readBody(req, 65536, () => new Error('too large'))) || '{}');
        if (url.pathname === '/__control/fault') {
          if (!FAULTS.has(body.kind)) return json(res, 400, { error: `kind must be one of ${[...FAULTS].join(', ')}` });
          fault = body.kind;
          return json(res, 200, { fault });
        }
        if (url.pathname === '/__control/users') {
          const u = { id: String(body.id ?? randomUUID()), email: String(body.email), email_verified: body.email_verified === true, name: String(body.name ?? body.email), groups: Array.isArray(body.groups) ? body.groups.map(String) : [] };
          users.set(u.id, u);
          return json(res, 200, u);
        }
        const m = /^\/__control\/users\/([^/]+)$/.exec(url.pathname);
        const u = m ? users.get(decodeURIComponent(m[1] ?? '')) : undefined;
        if (!u) return json(res, 404, { error: 'no such user' });
        if (Array.isArray(body.groups)) u.groups = body.groups.map(String);
        if (typeof body.email === 'string') u.email = body.email;
        if (typeof body.email_verified === 'boolean') u.email_verified = body.email_verified;
        return json(res, 200, u);
      }
      const login = /^\/interaction\/([^/]+)\/login$/.exec(url.pathname);
      if (login && req.method === 'POST') {
        const form = new URLSearchParams(await readBody(req, 65536, () => new Error('too large')));
        const id = form.get('user') ?? '';
        if (!users.has(id)) return json(res, 400, { error: 'no such user' });
        return await finish(req, res, id);
      }
      const page = /^\/interaction\/([^/]+)$/.exec(url.pathname);
      if (page && req.method === 'GET') {
        const details = await provider.interactionDetails(req, res);
        const hint = typeof details.params.login_hint === 'string' ? details.params.login_hint : '';
        if (users.has(hint)) return await finish(req, res, hint);
        const uid = encodeURIComponent(details.uid);
        const items = [...users.values()]
          .map((u) => `<li><form method="post" action="/interaction/${uid}/login"><input type="hidden" name="user" value="${esc(u.id)}"><button type="submit" data-user="${esc(u.id)}">Sign in as ${esc(u.name)} (${esc(u.email)})</button></form></li>`)
          .join('');
        res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
        res.end(`<!doctype html><html><head><meta charset="utf-8"><title>Local OpenID provider</title></head><body><h1>Local OpenID provider</h1><p>Pick a test user (no password: development only).</p><ul>${items}</ul></body></html>`);
        return;
      }
      callback(req, res);
    };
    handle().catch((e) => {
      if (!res.headersSent) json(res, 500, { error: e instanceof Error ? e.message : String(e) });
    });
  });

  return {
    url: issuer,
    issuer,
    clientId: LOCAL_CLIENT_ID,
    clientSecret: LOCAL_CLIENT_SECRET,
    users,
    close: async () => {
      server.closeAllConnections();
      await new Promise((r) => server.close(() => r(undefined)));
    },
  };
}

/** @param {string} s */
function esc(s) {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
