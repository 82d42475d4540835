/**
 * The OpenID Connect sign-in (authorization code flow with PKCE S256, `state` and `nonce`), on oauth4webapi.
 *
 * Where the flow's secrets live: `state`, `nonce` and the PKCE verifier are kept server-side in Postgres
 * (`oidc_flows`, keyed by the state's hash), taken once (DELETE ... RETURNING) and valid 10 minutes. The row is also
 * bound to the browser that started it by an HttpOnly cookie (`oidc_flow`, its hash in the row), so a callback URL
 * handed to another browser signs nobody in.
 *
 * What is verified: the state (single use, unexpired, same browser), the code exchange (PKCE verifier, client secret),
 * the ID token's signature against the provider's JWKS, its `iss`, `aud` (and `azp`), `exp`/`iat`, and the `nonce`;
 * then the user is found by (issuer, `sub`), never by email alone.
 */
import * as oauth from 'oauth4webapi';
import { z } from 'zod';
import type { Db } from '../core/db';
import { randomString, sha256Hex, timingSafeEqual } from '../core/crypto';
import { log } from '../core/log';
import type { Settings } from '../env';
import {
  getOidcIdentity,
  getUserForLink,
  insertOidcFlow,
  insertOidcIdentity,
  setUserGroups,
  takeOidcFlow,
  touchOidcIdentity,
} from '../../sql/generated/oidc.queries';
import { audit } from './audit';
import { membershipChanged } from './groups';
import { clientSecret, discover, loadOidcRow, requestOptions, type OidcRow } from './oidc-config';
import { createKey, createUser } from './users';

export const FLOW_TTL_SECONDS = 600;
export const FLOW_COOKIE = 'oidc_flow';
export const CALLBACK_PATH = '/api/v2/auth/oidc/callback';

/** A sign-in that fails: `code` goes to /login?error=<code>; no session and no user are made. */
export class SsoFailure extends Error {
  constructor(readonly code: string, readonly reason: string) {
    super(reason);
    this.name = 'SsoFailure';
  }
}

/** A path on this origin to return to after sign-in (never another origin). */
export const RedirectPath = z
  .string()
  .max(2000)
  .refine((p) => p.startsWith('/') && !p.startsWith('//') && !p.includes('\\') && !/\p{Cc}/u.test(p), {
    message: 'must be a path on this origin',
  });

export interface SsoEnv {
  allowInsecure: boolean;
  origin: string;
}

async function enabledConfig(db: Db): Promise<OidcRow> {
  const row = await loadOidcRow(db);
  if (!row?.enabled) throw new SsoFailure('sso_disabled', 'single sign-on is not enabled');
  return row;
}

/** Starts a sign-in: stores the flow, answers the provider's authorization URL and the browser cookie's value. */
export async function startLogin(db: Db, e: SsoEnv, redirect: string): Promise<{ url: string; browser: string }> {
  const row = await enabledConfig(db);
  let as: oauth.AuthorizationServer;
  try {
    as = await discover(row.issuer, e.allowInsecure);
  } catch (err) {
    log('warn', 'oidc discovery failed', { error: err instanceof Error ? err.message : String(err) });
    throw new SsoFailure('provider_unavailable', 'discovery failed');
  }
  if (!as.authorization_endpoint) throw new SsoFailure('provider_unavailable', 'no authorization endpoint');
  const state = oauth.generateRandomState();
  const nonce = oauth.generateRandomNonce();
  const verifier = oauth.generateRandomCodeVerifier();
  const browser = randomString(43);
  await insertOidcFlow.run(
    {
      state_hash: await sha256Hex(state),
      browser_hash: await sha256Hex(browser),
      nonce,
      code_verifier: verifier,
      redirect,
      ttl_seconds: FLOW_TTL_SECONDS,
    },
    db,
  );
  const url = new URL(as.authorization_endpoint);
  url.searchParams.set('response_type', 'code');
  url.searchParams.set('client_id', row.client_id);
  url.searchParams.set('redirect_uri', `${e.origin}${CALLBACK_PATH}`);
  url.searchParams.set('scope', row.scopes.join(' '));
  url.searchParams.set('state', state);
  url.searchParams.set('nonce', nonce);
  url.searchParams.set('code_challenge', await oauth.calculatePKCECodeChallenge(verifier));
  url.searchParams.set('code_challenge_method', 'S256');
  return { url: url.href, browser };
}

const Claims = z.object({
  iss: z.string(),
  sub: z.string().min(1).max(255),
  email: z.string().max(254).optional(),
  email_verified: z.union([z.boolean(), z.literal('true'), z.literal('false')]).optional(),
  preferred_username: z.string().optional(),
  name: z.string().optional(),
});

export interface SsoLogin {
  userId: string;
  email: string;
  token: string;
  redirect: string;
  created: boolean;
}

/** Finishes a sign-in from the provider's redirect. Throws SsoFailure for anything wrong. */
export async function finishLogin(env: Env, db: Db, s: Settings, e: SsoEnv, callbackUrl: URL, browser: string | undefined, ip: string | null): Promise<SsoLogin> {
  const state = callbackUrl.searchParams.get('state');
  if (!state) throw new SsoFailure('invalid_state', 'no state');
  const [flow] = await takeOidcFlow.run({ state_hash: await sha256Hex(state) }, db);
  if (!flow) throw new SsoFailure('invalid_state', 'unknown, used or expired state');
  if (!browser || !timingSafeEqual(await sha256Hex(browser), flow.browser_hash)) {
    throw new SsoFailure('invalid_state', 'the flow was started by another browser');
  }
  const row = await enabledConfig(db);
  const secret = await clientSecret(env, row);
  let claims: z.infer<typeof Claims> & Record<string, unknown>;
  try {
    const as = await discover(row.issuer, e.allowInsecure);
    const client: oauth.Client = { client_id: row.client_id };
    const auth = secret === null ? oauth.None() : oauth.ClientSecretBasic(secret);
    const params = oauth.validateAuthResponse(as, client, callbackUrl, state);
    const opts = requestOptions(e.allowInsecure);
    const res = await oauth.authorizationCodeGrantRequest(as, client, auth, params, `${e.origin}${CALLBACK_PATH}`, flow.code_verifier, opts);
    const result = await oauth.processAuthorizationCodeResponse(as, client, res, { expectedNonce: flow.nonce, requireIdToken: true });
    // The ID token came over TLS from the token endpoint; its signature is checked anyway, against the JWKS.
    await oauth.validateApplicationLevelSignature(as, res, opts);
    const raw = oauth.getValidatedIdTokenClaims(result);
    claims = { ...raw, ...Claims.parse(raw) };
  } catch (err) {
    if (err instanceof SsoFailure) throw err;
    const reason = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
    log('warn', 'oidc callback rejected', { reason });
    const code = err instanceof oauth.AuthorizationResponseError ? 'access_denied' : 'invalid_token';
    throw new SsoFailure(code, reason.slice(0, 300));
  }
  const parsed = Claims.parse(claims);
  const email = parsed.email?.trim().toLowerCase() ?? '';
  const verified = parsed.email_verified === true || parsed.email_verified === 'true';
  if (!email || !verified) throw new SsoFailure('email_unverified', 'the provider gave no verified email');
  const domain = email.split('@')[1] ?? '';
  if (row.email_domains.length > 0 && !row.email_domains.includes(domain)) {
    throw new SsoFailure('email_domain', `email domain ${domain} is not allowed`);
  }
  const groupIds = mappedGroups(row, claims);
  const mapped = [...new Set(Object.values(row.group_mapping))];
  // The password of an account made by single sign-on: random, never told, so only SSO (or a reset) opens it.
  const unusable = randomString(48);
  const out = await db.inTx(async (tx) => {
    const [known] = await getOidcIdentity.run({ issuer: parsed.iss, subject: parsed.sub }, tx);
    let userId: string;
    let created = false;
    if (known) {
      if (known.suspended) throw new SsoFailure('suspended', 'the account is suspended');
      userId = known.user_id;
      await touchOidcIdentity.run({ issuer: parsed.iss, subject: parsed.sub }, tx);
    } else {
      const [existing] = await getUserForLink.run({ email, issuer: parsed.iss }, tx);
      if (existing) {
        if (!row.link_by_email) throw new SsoFailure('email_taken', 'an account with this email exists and linking is off');
        if (existing.linked) throw new SsoFailure('email_taken', 'the account is linked to another subject');
        if (existing.suspended) throw new SsoFailure('suspended', 'the account is suspended');
        userId = existing.id;
      } else {
        if (!row.auto_create_users) throw new SsoFailure('no_account', 'no account and auto_create_users is off');
        const user = await createUser(tx, { ...s, PASSWORD_HASH_ITERATIONS: 1000 }, {
          email,
          username: await usernameFor(email),
          password: unusable,
          roles: ['member'],
        });
        userId = user.id;
        created = true;
        await audit(tx, { action: 'user.created', actor: null, ip, target_type: 'user', target_id: userId, detail: { email, source: 'oidc', issuer: parsed.iss } });
      }
      await insertOidcIdentity.run({ issuer: parsed.iss, subject: parsed.sub, user_id: userId }, tx);
    }
    const [sync] = mapped.length > 0 ? await setUserGroups.run({ user_id: userId, mapped_ids: mapped, group_ids: groupIds }, tx) : [];
    for (const g of sync?.added ?? []) {
      await audit(tx, { action: 'group.member_added', actor: null, ip, target_type: 'group', target_id: g, detail: { user_id: userId, source: 'oidc' } });
    }
    for (const g of sync?.removed ?? []) {
      await audit(tx, { action: 'group.member_removed', actor: null, ip, target_type: 'group', target_id: g, detail: { user_id: userId, source: 'oidc' } });
    }
    const session = await createKey(tx, userId, 'session', '', s.SESSION_LIFETIME_SECONDS);
    await audit(tx, { action: 'user.login', actor: { id: userId, email }, ip, target_type: 'user', target_id: userId, detail: { method: 'oidc', issuer: parsed.iss } });
    return { userId, token: session.key, created, changed: (sync?.added.length ?? 0) + (sync?.removed.length ?? 0) > 0 };
  });
  // After the commit: the user's cached keys forget their groups and their open streams re-check (4403 on loss).
  if (out.changed) await membershipChanged(env, db, out.userId);
  return { userId: out.userId, email, token: out.token, redirect: flow.redirect, created: out.created };
}

/** The group ids the claim maps to (unmapped claim values are ignored). */
function mappedGroups(row: OidcRow, claims: Record<string, unknown>): string[] {
  if (!row.groups_claim) return [];
  const raw = claims[row.groups_claim];
  const values = Array.isArray(raw) ? raw.filter((v): v is string => typeof v === 'string') : typeof raw === 'string' ? [raw] : [];
  const ids = values.map((v) => row.group_mapping[v]).filter((v): v is string => v !== undefined);
  return [...new Set(ids)];
}

/** A username from the email's local part, made unique with a random suffix. */
async function usernameFor(email: string): Promise<string> {
  const local = (email.split('@')[0] ?? 'user').replace(/[^A-Za-z0-9_.-]/g, '').replace(/^[^A-Za-z0-9]+/, '').slice(0, 40) || 'user';
  return `${local}-${(await sha256Hex(randomString(16))).slice(0, 8)}`;
}

