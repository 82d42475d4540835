/** Deployment settings from the Worker's vars and secrets, validated once per env object. */
import { z } from 'zod';
import type { DbSettings } from './db';

/** A comma-separated list (blank entries dropped). */
const List = z
  .string()
  .default('')
  .transform((v) => v.split(',').map((x) => x.trim()).filter((x) => x !== ''));

const Settings = z.object({
  DATABASE_URL: z.string().default(''),
  PG_WS_PROXY: z.string().default(''),
  // The local proxy's per-run token (a secret that `npm run dev` and the tests hand over); rides in the proxy URL.
  PG_WS_PROXY_TOKEN: z.string().default(''),
  PG_CONNECT_TIMEOUT_MS: z.coerce.number().int().positive().default(5000),
  PG_STATEMENT_TIMEOUT_MS: z.coerce.number().int().positive().default(15000),
  PG_IDLE_CLOSE_MS: z.coerce.number().int().min(0).default(10000),
  SESSION_LIFETIME_SECONDS: z.coerce.number().int().positive().default(86400),
  API_KEY_MAX_LIFETIME_SECONDS: z.coerce.number().int().positive().default(31536000),
  PASSWORD_HASH_ITERATIONS: z.coerce.number().int().min(1000).max(100000).default(100000),
  LLM_IDLE_TIMEOUT_MS: z.coerce.number().int().positive().default(120000),
  LLM_MAX_RETRIES: z.coerce.number().int().min(0).max(10).default(2),
  // A turn's deltas after its first are sent to the stream together, at most this often (0: one frame per delta).
  STREAM_FLUSH_MS: z.coerce.number().int().min(0).max(1000).default(25),
  // How long a chat's object keeps retrying a turn's write that Postgres could not take before it reports the chat
  // as `error` (it keeps the answer and still writes it when Postgres returns).
  OUTBOX_GIVE_UP_MS: z.coerce.number().int().positive().default(900_000),
  WEBPUSH_CONTACT: z.string().min(1).default('mailto:admin@example.com'),
  // Development and tests only: accept http and private-host push endpoints.
  WEBPUSH_ALLOW_INSECURE_ENDPOINTS: z
    .enum(['true', 'false', ''])
    .default('false')
    .transform((v) => v === 'true'),
  // Push service hosts admitted on top of the built-in ones (`host` or `*.domain`).
  WEBPUSH_ALLOWED_HOSTS: List,
  // Skip a turn's notification while the chat's owner has its stream open.
  WEBPUSH_SKIP_WHEN_WATCHING: z
    .enum(['true', 'false', ''])
    .default('true')
    .transform((v) => v !== 'false'),
  // Origins (`https://app.example.com`) whose pages may open the chat stream, besides the deployment's own.
  STREAM_ALLOWED_ORIGINS: List,
  // Development only: MCP servers may be any http(s) URL (loopback, private hosts, IP addresses). `npm run dev` sets it.
  MCP_ALLOW_INSECURE_URLS: z
    .enum(['true', 'false', ''])
    .default('false')
    .transform((v) => v === 'true'),
  // A tool call that has not answered after this long is an error result the model sees.
  MCP_TOOL_TIMEOUT_MS: z.coerce.number().int().positive().max(600_000).default(30_000),
  // A tool result longer than this (characters of JSON) is cut to its text, this long, and marked truncated.
  MCP_RESULT_MAX_CHARS: z.coerce.number().int().min(1000).max(190_000).default(20_000),
  // How long a server's tool list is kept before it is asked again (sooner when it says its list changed).
  MCP_TOOLS_TTL_MS: z.coerce.number().int().min(0).default(300_000),
  // Per client IP and minute: login attempts (also password changes), and failed authentications.
  LOGIN_RATE_LIMIT: z.coerce.number().int().positive().default(10),
  AUTH_FAILURE_RATE_LIMIT: z.coerce.number().int().positive().default(30),
  // Development and tests only: the OpenID issuer may be http (the local provider of `npm run dev`).
  OIDC_ALLOW_INSECURE_ISSUER: z
    .enum(['true', 'false', ''])
    .default('false')
    .transform((v) => v === 'true'),
  // Chat files: the bytes each user may store in total (docs/files.md).
  FILE_QUOTA_BYTES: z.coerce.number().int().min(0).default(1024 * 1024 * 1024),
});
export type Settings = z.infer<typeof Settings>;

const cache = new WeakMap<object, Settings>();

/** Deployment settings from the Worker's vars and secrets, validated once per env object. */
export function settings(env: Env): Settings {
  const hit = cache.get(env);
  if (hit) return hit;
  const parsed = Settings.safeParse(env);
  if (!parsed.success) {
    // A misconfigured deployment: say which variable, never its value.
    const fields = parsed.error.issues.map((i) => i.path.join('.')).join(', ');
    throw new Error(`invalid Worker configuration in: ${fields}`);
  }
  cache.set(env, parsed.data);
  return parsed.data;
}

/**
 * Connection settings for a Db from the deployment settings. Durable Objects keep their connection but close
 * it after PG_IDLE_CLOSE_MS without use; a Worker request's connection lives for the request.
 */
export function dbSettings(env: Env, opts: { durable?: boolean } = {}): DbSettings {
  const s = settings(env);
  return {
    url: s.DATABASE_URL,
    wsProxy: s.PG_WS_PROXY,
    wsProxyToken: s.PG_WS_PROXY_TOKEN,
    connectTimeoutMs: s.PG_CONNECT_TIMEOUT_MS,
    statementTimeoutMs: s.PG_STATEMENT_TIMEOUT_MS,
    idleCloseMs: opts.durable ? s.PG_IDLE_CLOSE_MS : 0,
    // A request's connection lives for one request: nothing to reuse a prepared statement for.
    prepare: opts.durable === true,
  };
}
