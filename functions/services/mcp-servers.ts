/**
 * The deployment's MCP servers (owners manage them) and the rules for every MCP server a turn may reach: URLs follow
 * the outbound rules of functions/lib/url-policy.ts (https, public hosts; anything with MCP_ALLOW_INSECURE_URLS in
 * development), header values are sealed like provider keys and never returned, and servers pinned by an agent must
 * also be on the owners' host allowlist (`mcp_allowed_hosts`, empty by default: none).
 */
import { z } from 'zod';
import type { Db, Queryable } from '../lib/db';
import { pgErrorCode } from '../lib/db';
import { badRequest, conflict, notFound } from '../lib/errors';
import type { KeyRing } from '../lib/keyring';
import type { Settings } from '../lib/settings';
import { hostAllowed, outboundUrlProblem } from '../lib/url-policy';
import {
  deleteMcpServerById,
  getEnabledMcpServers,
  getMcpServerByIdForUpdate,
  getMcpServers,
  getMcpServersSealedWithOtherKey,
  insertMcpServer,
  resealMcpServerHeaders as resealHeadersQuery,
  updateMcpServer,
} from '../../sql/generated/mcp_servers.queries';
import { Timestamp } from '../shapes/chat';
import { McpServer, ServerHeaders, ToolApproval, type NewMcpServer } from '../shapes/tools';
import { getSetting } from './site-config';

export { AllowedTools, ServerHeaders, ServerName, ToolApproval } from '../shapes/tools';
export type { McpServer } from '../shapes/tools';

/** A server row as the API shows it: the sealed headers are reduced to `has_headers`. */
const Row = McpServer.omit({ has_headers: true })
  .extend({ headers: z.string().nullable(), created_at: Timestamp, updated_at: Timestamp })
  .transform(({ headers, ...r }): McpServer => ({ ...r, has_headers: headers !== null }));

function toServer(row: unknown): McpServer {
  return Row.parse(row);
}

/** The binding (AES-GCM additional data) of a server's sealed headers: its row. */
export const headersBinding = (serverId: string): string => `mcp_servers:${serverId}`;

/**
 * Why an MCP server URL is refused (null: fine). With `allowedHosts` (an agent's pinned server), its host must also be
 * on the owners' allowlist, even in development.
 */
export function mcpUrlProblem(url: string, s: Pick<Settings, 'MCP_ALLOW_INSECURE_URLS'>, allowedHosts: readonly string[] | null): string | null {
  const base = outboundUrlProblem(url, { allowInsecure: s.MCP_ALLOW_INSECURE_URLS, allowedHosts: null });
  if (base !== null || allowedHosts === null) return base;
  const host = URL.parse(url)?.hostname.toLowerCase() ?? '';
  return hostAllowed(host, allowedHosts) ? null : "must be on a host in the deployment's MCP allowlist";
}

function checkUrl(url: string, s: Pick<Settings, 'MCP_ALLOW_INSECURE_URLS'>): void {
  const problem = mcpUrlProblem(url, s, null);
  if (problem !== null) throw badRequest('Validation failed.', [{ field: 'url', detail: problem }]);
}

export type McpServerInput = NewMcpServer;

const NAME_TAKEN = 'An MCP server with this name already exists.';

export async function listMcpServers(db: Queryable): Promise<McpServer[]> {
  return (await getMcpServers.run(undefined, db)).map(toServer);
}

export async function createMcpServer(db: Db, ring: KeyRing, s: Settings, actorId: string, input: McpServerInput): Promise<McpServer> {
  checkUrl(input.url, s);
  const id = crypto.randomUUID();
  const sealed = input.headers && Object.keys(input.headers).length > 0 ? await ring.seal(JSON.stringify(input.headers), headersBinding(id)) : null;
  try {
    const [row] = await insertMcpServer.run(
      {
        id,
        name: input.name,
        url: input.url,
        headers: sealed?.ciphertext ?? null,
        headers_key_id: sealed?.keyId ?? null,
        enabled: input.enabled ?? true,
        tool_approval: input.tool_approval ?? 'ask',
        allowed_tools: input.allowed_tools ?? null,
        created_by: actorId,
      },
      db,
    );
    invalidateToolConfig();
    return toServer(row);
  } catch (e) {
    if (pgErrorCode(e) === '23505') throw conflict(NAME_TAKEN);
    throw e;
  }
}

/** Changes a server; `headers: null` (or `{}`) removes them, `allowed_tools: null` offers every tool again. */
export async function updateMcpServerById(db: Db, ring: KeyRing, s: Settings, id: string, patch: Partial<McpServerInput>): Promise<McpServer> {
  if (patch.url !== undefined) checkUrl(patch.url, s);
  try {
    const row = await db.inTx(async (tx) => {
      const [current] = await getMcpServerByIdForUpdate.run({ id }, tx);
      if (!current) throw notFound();
      let headers = current.headers;
      let keyId = current.headers_key_id;
      if (patch.headers === null || (patch.headers && Object.keys(patch.headers).length === 0)) {
        headers = null;
        keyId = null;
      } else if (patch.headers !== undefined) {
        const sealed = await ring.seal(JSON.stringify(patch.headers), headersBinding(id));
        headers = sealed.ciphertext;
        keyId = sealed.keyId;
      }
      const [updated] = await updateMcpServer.run(
        {
          id,
          name: patch.name ?? current.name,
          url: patch.url ?? current.url,
          headers,
          headers_key_id: keyId,
          enabled: patch.enabled ?? current.enabled,
          tool_approval: patch.tool_approval ?? ToolApproval.parse(current.tool_approval),
          allowed_tools: patch.allowed_tools === undefined ? current.allowed_tools : patch.allowed_tools,
        },
        tx,
      );
      if (!updated) throw notFound();
      return updated;
    });
    invalidateToolConfig();
    return toServer(row);
  } catch (e) {
    if (pgErrorCode(e) === '23505') throw conflict(NAME_TAKEN);
    throw e;
  }
}

export async function deleteMcpServer(db: Queryable, id: string): Promise<void> {
  const gone = await deleteMcpServerById.run({ id }, db);
  if (gone.length === 0) throw notFound();
  invalidateToolConfig();
}

// ---------------------------------------------------------------- what turns use

/** An enabled deployment server as a turn uses it; its headers stay sealed until a connection opens them. */
export interface EnabledServer {
  id: string;
  name: string;
  url: string;
  sealedHeaders: { ciphertext: string; keyId: string } | null;
  approval: ToolApproval;
  allowedTools: string[] | null;
  /** Changes with every update: connections and tool lists are keyed by it. */
  version: string;
}

export interface ToolConfig {
  servers: EnabledServer[];
  /** Hosts an agent's pinned MCP servers may be on (`host` or `*.domain`). */
  allowedHosts: string[];
}

const EnabledRow = z.object({
  id: z.string(),
  name: z.string(),
  url: z.string(),
  headers: z.string().nullable(),
  headers_key_id: z.string().nullable(),
  tool_approval: ToolApproval,
  allowed_tools: z.array(z.string()).nullable(),
  updated_at: z.coerce.date(),
});

async function readToolConfig(db: Queryable): Promise<ToolConfig> {
  const servers = (await getEnabledMcpServers.run(undefined, db)).map((raw) => {
    const r = EnabledRow.parse(raw);
    return {
      id: r.id,
      name: r.name,
      url: r.url,
      sealedHeaders: r.headers !== null && r.headers_key_id !== null ? { ciphertext: r.headers, keyId: r.headers_key_id } : null,
      approval: r.tool_approval,
      allowedTools: r.allowed_tools,
      version: `${r.id}:${String(r.updated_at.getTime())}`,
    };
  });
  return { servers, allowedHosts: await getSetting(db, 'mcp_allowed_hosts') };
}

/**
 * Per-isolate cache of the tool configuration (two reads), so a turn reads none: writes in this isolate invalidate it
 * at once, other isolates (other objects' hosts) see a change within TOOL_CONFIG_TTL_MS.
 */
export const TOOL_CONFIG_TTL_MS = 30_000;
let configGeneration = 0;
let configCache: { at: number; generation: number; value: ToolConfig } | null = null;

export function invalidateToolConfig(): void {
  configGeneration += 1;
  configCache = null;
}

export async function toolConfigCached(db: Queryable, now = Date.now()): Promise<ToolConfig> {
  if (configCache && configCache.generation === configGeneration && now - configCache.at < TOOL_CONFIG_TTL_MS) return configCache.value;
  const started = configGeneration;
  const value = await readToolConfig(db);
  if (started === configGeneration) configCache = { at: now, generation: started, value };
  return value;
}

/** A deployment server's headers, opened (an empty object when it has none). */
export async function openServerHeaders(ring: KeyRing, server: EnabledServer): Promise<Record<string, string>> {
  if (!server.sealedHeaders) return {};
  return ServerHeaders.parse(JSON.parse(await ring.open(server.sealedHeaders, headersBinding(server.id))));
}

/** Re-encrypts server headers sealed by an older key with the current one, in bounded batches (the cron's rotation). */
export async function resealMcpServerHeaders(db: Db, ring: KeyRing, batch = 100): Promise<number> {
  let total = 0;
  for (;;) {
    const rows = await getMcpServersSealedWithOtherKey.run({ current_key_id: ring.currentKeyId, limit: batch }, db);
    if (rows.length === 0) return total;
    let progressed = 0;
    for (const r of rows) {
      if (r.headers === null || r.headers_key_id === null) continue;
      let plain: string;
      try {
        plain = await ring.open({ ciphertext: r.headers, keyId: r.headers_key_id }, headersBinding(r.id));
      } catch (e) {
        console.error(JSON.stringify({ level: 'error', msg: 'cannot reseal MCP server headers', server: r.id, error: String(e) }));
        continue;
      }
      const sealed = await ring.seal(plain, headersBinding(r.id));
      const done = await resealHeadersQuery.run({ id: r.id, headers: sealed.ciphertext, headers_key_id: sealed.keyId, previous_key_id: r.headers_key_id }, db);
      progressed += done.length;
    }
    total += progressed;
    if (progressed === 0 || rows.length < batch) {
      if (total > 0) invalidateToolConfig();
      return total;
    }
  }
}
