/**
 * Single sign-on settings (one OpenID provider per deployment) and the provider's discovery document, cached per
 * isolate. The client secret is sealed like provider keys (keyring.ts), bound to its row, and never returned.
 */
import { z } from 'zod';
import * as oauth from 'oauth4webapi';
import type { Conn, Queryable } from '../core/db';
import { badRequest } from '../core/errors';
import { keyRingOrFail } from '../core/keyring';
import { OidcConfig, type OidcConfigPut } from '../core/shapes/sso';
import { countExistingGroups, getOidcConfig, upsertOidcConfig } from '../../sql/generated/oidc.queries';
import { audit, type AuditActor } from './audit';

export const OIDC_SECRET_BINDING = 'oidc_config:client_secret';

/** The stored row: the API's shape with the sealed secret in place of `has_client_secret`. */
const Row = OidcConfig.omit({ has_client_secret: true }).extend({
  client_secret: z.string().nullable(),
  client_secret_key_id: z.string().nullable(),
});
export type OidcRow = z.infer<typeof Row>;

export async function loadOidcRow(db: Queryable): Promise<OidcRow | null> {
  const [row] = await getOidcConfig.run(undefined, db);
  return row ? Row.parse(row) : null;
}

export function toOidcConfig(r: OidcRow): OidcConfig {
  const { client_secret, client_secret_key_id: _k, ...rest } = r;
  return { ...rest, has_client_secret: client_secret !== null };
}

/** The issuer must be https, except with OIDC_ALLOW_INSECURE_ISSUER=true (local development). */
export function checkIssuer(issuer: string, allowInsecure: boolean): URL {
  const u = new URL(issuer);
  if (u.protocol !== 'https:' && !(allowInsecure && u.protocol === 'http:')) {
    throw badRequest('issuer must be an https URL.');
  }
  if (u.search || u.hash) throw badRequest('issuer must not have a query or fragment.');
  return u;
}

/** Saves the settings and its `oidc.updated` event in one transaction (the secret is sealed, never in the event). */
export async function putOidcConfig(
  db: Conn,
  env: Env,
  body: OidcConfigPut,
  allowInsecure: boolean,
  actor: AuditActor,
  ip: string | null,
): Promise<OidcConfig> {
  checkIssuer(body.issuer, allowInsecure);
  const sealed = body.client_secret === undefined ? null : await (await keyRingOrFail(env.PROVIDER_KEY_ENCRYPTION_KEY)).seal(body.client_secret, OIDC_SECRET_BINDING);
  const groupIds = Object.values(body.group_mapping ?? {});
  return await db.inTx(async (tx) => {
    if (groupIds.length > 0) {
      const unique = [...new Set(groupIds)];
      const [r] = await countExistingGroups.run({ ids: unique }, tx);
      if ((r?.n ?? 0) !== unique.length) throw badRequest('group_mapping names a group that does not exist.');
    }
    await upsertOidcConfig.run(
      {
        enabled: body.enabled,
        display_name: body.display_name,
        issuer: body.issuer.replace(/\/$/, ''),
        client_id: body.client_id,
        client_secret: sealed?.ciphertext ?? null,
        client_secret_key_id: sealed?.keyId ?? null,
        keep_secret: sealed === null,
        scopes: body.scopes ?? ['openid', 'email', 'profile'],
        email_domains: [...new Set(body.email_domains ?? [])],
        groups_claim: body.groups_claim ?? null,
        group_mapping: JSON.stringify(body.group_mapping ?? {}),
        auto_create_users: body.auto_create_users ?? false,
        link_by_email: body.link_by_email ?? false,
        require_sso_for_members: body.require_sso_for_members ?? false,
      },
      tx,
    );
    const row = await loadOidcRow(tx);
    if (!row) throw new Error('oidc_config row missing after upsert');
    await audit(tx, {
      action: 'oidc.updated',
      actor,
      ip,
      target_type: 'oidc_config',
      target_id: null,
      detail: { enabled: row.enabled, issuer: row.issuer, client_id: row.client_id, secret_changed: sealed !== null },
    });
    return toOidcConfig(row);
  });
}

/** Opens the sealed client secret. */
export async function clientSecret(env: Env, row: OidcRow): Promise<string | null> {
  if (row.client_secret === null || row.client_secret_key_id === null) return null;
  const ring = await keyRingOrFail(env.PROVIDER_KEY_ENCRYPTION_KEY);
  return await ring.open({ ciphertext: row.client_secret, keyId: row.client_secret_key_id }, OIDC_SECRET_BINDING);
}

const DISCOVERY_TTL_MS = 3_600_000;
const discovered = new Map<string, { as: oauth.AuthorizationServer; at: number }>();

/** Request options; http to the issuer only where OIDC_ALLOW_INSECURE_ISSUER=true (local development). */
export function requestOptions(allowInsecure: boolean): oauth.DiscoveryRequestOptions & oauth.TokenEndpointRequestOptions & oauth.ValidateSignatureOptions {
  const signal = AbortSignal.timeout(10_000);
  // eslint-disable-next-line @typescript-eslint/no-deprecated -- the library marks it so that it stands out: development only
  return allowInsecure ? { [oauth.allowInsecureRequests]: true, signal } : { signal };
}

/**
 * The provider's metadata (OpenID discovery), kept an hour per isolate; `fresh` refetches. The JWKS is cached by
 * oauth4webapi per metadata object (5 minutes, refetched at once when a token names an unknown `kid`).
 */
export async function discover(issuer: string, allowInsecure: boolean, fresh = false): Promise<oauth.AuthorizationServer> {
  const hit = discovered.get(issuer);
  if (hit && !fresh && Date.now() - hit.at < DISCOVERY_TTL_MS) return hit.as;
  const url = new URL(issuer);
  const res = await oauth.discoveryRequest(url, { algorithm: 'oidc', ...requestOptions(allowInsecure) });
  const as = await oauth.processDiscoveryResponse(url, res);
  discovered.set(issuer, { as, at: Date.now() });
  return as;
}

/** "Test the configuration": runs discovery and says what is wrong, in words. */
export async function testOidc(row: OidcRow | null, allowInsecure: boolean) {
  const problems: string[] = [];
  if (!row) return { ok: false, problems: ['Single sign-on is not configured.'], authorization_endpoint: null };
  try {
    checkIssuer(row.issuer, allowInsecure);
  } catch {
    problems.push('The issuer must be an https URL.');
    return { ok: false, problems, authorization_endpoint: null };
  }
  let as: oauth.AuthorizationServer | null = null;
  try {
    as = await discover(row.issuer, allowInsecure, true);
  } catch (e) {
    problems.push(`Discovery at ${row.issuer}/.well-known/openid-configuration failed: ${e instanceof Error ? e.message : 'unknown error'}.`);
  }
  if (as) {
    if (!as.authorization_endpoint) problems.push('The provider names no authorization endpoint.');
    if (!as.token_endpoint) problems.push('The provider names no token endpoint.');
    if (!as.jwks_uri) problems.push('The provider names no JWKS URI.');
    if (as.code_challenge_methods_supported && !as.code_challenge_methods_supported.includes('S256')) {
      problems.push('The provider does not announce PKCE S256.');
    }
  }
  if (row.client_secret === null) problems.push('No client secret is set.');
  if (!row.scopes.includes('openid')) problems.push('The scopes must include "openid".');
  return { ok: problems.length === 0, problems, authorization_endpoint: as?.authorization_endpoint ?? null };
}
