// @ts-check
/**
 * `npm run dev`'s single sign-on: the local OpenID provider (scripts/lib/oidc-provider.mjs) on 127.0.0.1:54333
 * (CHATD_OIDC_PORT), and a seed that points a database without SSO settings at it: enabled, "Local provider",
 * members created on first login from example.com, the groups `engineering` and `staff` created and mapped.
 * Sign in at the web UI's login page with "Sign in with Local provider" and pick a test user.
 */
import { startOidcProvider, LOCAL_CLIENT_ID, LOCAL_CLIENT_SECRET } from './oidc-provider.mjs';
import { sealBound } from './seal.mjs';

/**
 * @param {{ port: number, workerPort: number }} o
 */
export async function startDevOidc(o) {
  const redirectUris = [`http://127.0.0.1:${o.workerPort}/api/v2/auth/oidc/callback`, `http://localhost:${o.workerPort}/api/v2/auth/oidc/callback`];
  return await startOidcProvider({ port: o.port, redirectUris });
}

/**
 * @param {{ query: (text: string, values?: unknown[]) => Promise<{ rows: Record<string, unknown>[] }> }} client
 * @param {{ issuer: string, encryptionKey: string | undefined, log: (line: string) => void }} o
 */
export async function seedDevOidc(client, o) {
  const existing = await client.query('SELECT 1 FROM oidc_config');
  if (existing.rows.length > 0) return o.log('single sign-on already configured: left alone');
  if (!o.encryptionKey) return o.log('single sign-on not seeded: no PROVIDER_KEY_ENCRYPTION_KEY');
  /** @type {Record<string, string>} */
  const mapping = {};
  for (const name of ['engineering', 'staff']) {
    await client.query('INSERT INTO groups (name) VALUES ($1) ON CONFLICT ((lower(name))) DO NOTHING', [name]);
    const r = await client.query('SELECT id::text AS id FROM groups WHERE lower(name) = $1', [name]);
    mapping[name] = String(r.rows[0]?.id);
  }
  const sealed = await sealBound(o.encryptionKey, 'oidc_config:client_secret', LOCAL_CLIENT_SECRET);
  await client.query(
    `INSERT INTO oidc_config (enabled, display_name, issuer, client_id, client_secret, client_secret_key_id, scopes,
       email_domains, groups_claim, group_mapping, auto_create_users)
     VALUES (true, 'Local provider', $1, $2, $3, $4, ARRAY['openid','email','profile','groups'], ARRAY['example.com'],
       'groups', $5::jsonb, true)`,
    [o.issuer, LOCAL_CLIENT_ID, sealed.ciphertext, sealed.keyId, JSON.stringify(mapping)],
  );
  o.log(`single sign-on seeded: the local provider at ${o.issuer} (groups engineering, staff)`);
}
