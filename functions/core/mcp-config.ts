/**
 * The MCP servers a turn may reach, as turns read them (the enabled servers and the agents' host allowlist, cached per
 * isolate), and the rules every MCP URL follows. Shared: the Worker's admin routes invalidate the cache and check URLs,
 * the chat objects read it.
 */
import { z } from 'zod';
import type { Queryable } from './db';
import type { KeyRing } from './keyring';
import type { Settings } from './settings';
import { hostAllowed, outboundUrlProblem } from './url-policy';
import { getEnabledMcpServers } from '../../sql/generated/mcp_servers.queries';
import { ServerHeaders, ToolApproval } from './shapes/tools';
import { getSetting } from './site-config';

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

