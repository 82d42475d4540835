/** Single sign-on (OpenID Connect) and the audit log: the API's shapes, each written once (see shapes/chat.ts). */
import { z } from '@hono/zod-openapi';

export const AuthMethods = z
  .object({
    password: z.boolean(),
    oidc: z.object({ enabled: z.boolean(), display_name: z.string() }).nullable(),
  })
  .openapi('AuthMethods');

const Domain = z
  .string()
  .trim()
  .toLowerCase()
  .regex(/^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$/, { message: 'must be a domain name' });

/** The settings both read and written; `client_secret` is write-only. */
const OidcFields = {
  enabled: z.boolean(),
  display_name: z.string().trim().min(1, { message: 'must not be empty' }).max(100),
  issuer: z.url({ message: 'must be a URL' }).max(2000),
  client_id: z.string().min(1, { message: 'must not be empty' }).max(500),
  scopes: z.array(z.string().regex(/^[\x21\x23-\x5B\x5D-\x7E]{1,100}$/, { message: 'must be a scope token' })).max(30).optional(),
  email_domains: z.array(Domain).max(100).optional(),
  groups_claim: z.string().min(1).max(200).nullable().optional(),
  group_mapping: z
    .record(z.string().min(1).max(500), z.uuid({ message: 'must be a group id' }))
    .refine((r) => Object.keys(r).length <= 500, { message: 'at most 500 mappings' })
    .optional(),
  auto_create_users: z.boolean().optional(),
  // Beyond the contract's list (issue 29): a first login may link to an existing account with the same verified email
  // only when the owner allows it; members may be required to sign in with SSO (owners never are).
  link_by_email: z.boolean().optional(),
  require_sso_for_members: z.boolean().optional(),
};

export const OidcConfigPut = z
  .object({ ...OidcFields, client_secret: z.string().min(1).max(2000).optional() })
  .strict()
  .openapi('OidcConfigPut');
export type OidcConfigPut = z.infer<typeof OidcConfigPut>;

export const OidcConfig = z
  .object({
    enabled: z.boolean(),
    display_name: z.string(),
    issuer: z.string(),
    client_id: z.string(),
    scopes: z.array(z.string()),
    email_domains: z.array(z.string()),
    groups_claim: z.string().nullable(),
    group_mapping: z.record(z.string(), z.string()),
    auto_create_users: z.boolean(),
    link_by_email: z.boolean(),
    require_sso_for_members: z.boolean(),
    has_client_secret: z.boolean(),
  })
  .openapi('OidcConfig');
export type OidcConfig = z.infer<typeof OidcConfig>;

export const OidcTestResult = z
  .object({ ok: z.boolean(), problems: z.array(z.string()), authorization_endpoint: z.string().nullable() })
  .openapi('OidcTestResult');

export const AUDIT_ACTIONS = [
  'user.login',
  'user.login_failed',
  'user.logout',
  'user.created',
  'user.updated',
  'key.created',
  'key.deleted',
  'sessions.revoked',
  'password.changed',
  'provider.created',
  'provider.updated',
  'provider.deleted',
  'model_config.created',
  'model_config.updated',
  'model_config.deleted',
  'settings.updated',
  'spend_limit.updated',
  'mcp_server.created',
  'mcp_server.updated',
  'mcp_server.deleted',
  'group.created',
  'group.updated',
  'group.deleted',
  'group.member_added',
  'group.member_removed',
  'chat.acl_updated',
  'share_link.created',
  'share_link.deleted',
  'oidc.updated',
] as const;
export const AuditAction = z.enum(AUDIT_ACTIONS).openapi('AuditAction');
export type AuditAction = z.infer<typeof AuditAction>;

export const AuditEvent = z
  .object({
    id: z.string(),
    at: z.iso.datetime(),
    actor_id: z.uuid().nullable(),
    actor_email: z.string().nullable(),
    action: AuditAction,
    target_type: z.string().nullable(),
    target_id: z.string().nullable(),
    ip: z.string().nullable(),
    detail: z.record(z.string(), z.unknown()),
  })
  .openapi('AuditEvent');
export type AuditEvent = z.infer<typeof AuditEvent>;

export const AuditQuery = z.object({
  from: z.iso.datetime({ offset: true, message: 'must be an ISO date-time' }).optional(),
  to: z.iso.datetime({ offset: true, message: 'must be an ISO date-time' }).optional(),
  actor_id: z.uuid({ message: 'must be a UUID' }).optional(),
  action: AuditAction.optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
  offset: z.coerce.number().int().min(0).max(1_000_000).default(0),
  format: z.enum(['json', 'csv']).default('json'),
});
