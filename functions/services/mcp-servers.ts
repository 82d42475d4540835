/**
 * The deployment's MCP servers (owners manage them) and the rules for every MCP server a turn may reach: URLs follow
 * the outbound rules of functions/core/url-policy.ts (https, public hosts; anything with MCP_ALLOW_INSECURE_URLS in
 * development), header values are sealed like provider keys and never returned, and servers pinned by an agent must
 * also be on the owners' host allowlist (`mcp_allowed_hosts`, empty by default: none).
 */
import { z } from 'zod';
import { noEvent, type Recorder } from './audit';
import type { Db, Queryable } from '../core/db';
import { pgErrorCode } from '../core/db';
import { badRequest, conflict, notFound } from '../core/errors';
import type { KeyRing } from '../core/keyring';
import type { Settings } from '../core/settings';
import { headersBinding, invalidateToolConfig, mcpUrlProblem } from '../core/mcp-config';
import { resealAll } from './reseal';
import {
  deleteMcpServerById,
  getMcpServerByIdForUpdate,
  getMcpServers,
  getMcpServersSealedWithOtherKey,
  insertMcpServer,
  resealMcpServerHeaders as resealHeadersQuery,
  updateMcpServer,
} from '../../sql/generated/mcp_servers.queries';
import { Timestamp } from '../core/shapes/chat';
import { McpServer, ToolApproval, type NewMcpServer } from '../core/shapes/tools';

export { AllowedTools, ServerHeaders, ServerName, ToolApproval } from '../core/shapes/tools';
export type { McpServer } from '../core/shapes/tools';

/** A server row as the API shows it: the sealed headers are reduced to `has_headers`. */
const Row = McpServer.omit({ has_headers: true })
  .extend({ headers: z.string().nullable(), created_at: Timestamp, updated_at: Timestamp })
  .transform(({ headers, ...r }): McpServer => ({ ...r, has_headers: headers !== null }));

function toServer(row: unknown): McpServer {
  return Row.parse(row);
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

export async function createMcpServer(db: Db, ring: KeyRing, s: Settings, actorId: string, input: McpServerInput, record: Recorder<McpServer> = noEvent): Promise<McpServer> {
  checkUrl(input.url, s);
  const id = crypto.randomUUID();
  const sealed = input.headers && Object.keys(input.headers).length > 0 ? await ring.seal(JSON.stringify(input.headers), headersBinding(id)) : null;
  try {
    const server = await db.inTx(async (tx) => {
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
      tx,
      );
      const created = toServer(row);
      await record(tx, created);
      return created;
    });
    invalidateToolConfig();
    return server;
  } catch (e) {
    if (pgErrorCode(e) === '23505') throw conflict(NAME_TAKEN);
    throw e;
  }
}

/** Changes a server; `headers: null` (or `{}`) removes them, `allowed_tools: null` offers every tool again. */
export async function updateMcpServerById(db: Db, ring: KeyRing, s: Settings, id: string, patch: Partial<McpServerInput>, record: Recorder<McpServer> = noEvent): Promise<McpServer> {
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
      const server = toServer(updated);
      await record(tx, server);
      return server;
    });
    invalidateToolConfig();
    return row;
  } catch (e) {
    if (pgErrorCode(e) === '23505') throw conflict(NAME_TAKEN);
    throw e;
  }
}

export async function deleteMcpServer(db: Db, id: string, record: Recorder<string> = noEvent): Promise<void> {
  await db.inTx(async (tx) => {
    const gone = await deleteMcpServerById.run({ id }, tx);
    if (gone.length === 0) throw notFound();
    await record(tx, id);
  });
  invalidateToolConfig();
}

/** Re-encrypts server headers sealed by an older key with the current one, in bounded batches (the cron's rotation). */
export async function resealMcpServerHeaders(db: Db, ring: KeyRing, batch = 100): Promise<number> {
  const total = await resealAll(
    ring,
    {
      what: 'MCP server headers',
      stale: (current_key_id, limit) => getMcpServersSealedWithOtherKey.run({ current_key_id, limit }, db),
      id: (r) => r.id,
      sealed: (r) => (r.headers !== null && r.headers_key_id !== null ? { ciphertext: r.headers, keyId: r.headers_key_id } : null),
      binding: (r) => headersBinding(r.id),
      store: async (r, v, previous_key_id) =>
        (await resealHeadersQuery.run({ id: r.id, headers: v.ciphertext, headers_key_id: v.keyId, previous_key_id }, db)).length,
    },
    batch,
  );
  if (total > 0) invalidateToolConfig();
  return total;
}
