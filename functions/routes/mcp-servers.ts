import { createRoute, z } from '@hono/zod-openapi';
import { authorize } from '../authz';
import { keyRingOrFail } from '../core/keyring';
import { errorResponses, jsonBody, jsonResponse, router, UuidParam } from '../lib/openapi';
import { settings } from '../core/settings';
import { createMcpServer, deleteMcpServer, listMcpServers, updateMcpServerById } from '../services/mcp-servers';
import { invalidateToolConfig } from '../core/mcp-config';
import { getSetting } from '../core/site-config';
import { auditBy, recordWith } from '../services/audit';
import { saveSetting } from '../services/settings';
import type { McpServer as McpServerT } from '../core/shapes/tools';

/** What a server's event says of it: its host only (a URL may carry a token), never its headers. */
const serverDetail = (m: McpServerT) => ({ name: m.name, host: hostOf(m.url), enabled: m.enabled, tool_approval: m.tool_approval, has_headers: m.has_headers });
function hostOf(url: string): string | null {
  try {
    return new URL(url).host;
  } catch {
    return null;
  }
}
import { McpAllowedHosts as AllowedHosts, McpServer as McpServerSchema, McpServerPatch as PatchBody, NewMcpServer as CreateBody } from '../core/shapes/tools';

const owner = authorize('deployment.manage');
const IdParams = z.object({ id: UuidParam('id') });

/** The deployment's MCP servers, and the hosts agents' pinned servers may be on (owners). */
const app = router()
  .openapi(
    createRoute({
      method: 'get',
      path: '/mcp-servers',
      summary: 'List MCP servers (owner)',
      middleware: owner,
      responses: { 200: jsonResponse(z.array(McpServerSchema), 'By name'), ...errorResponses(401, 403) },
    }),
    async (c) => c.json(await listMcpServers(c.var.db), 200),
  )
  .openapi(
    createRoute({
      method: 'post',
      path: '/mcp-servers',
      summary: 'Add an MCP server (owner)',
      middleware: owner,
      request: { body: jsonBody(CreateBody) },
      responses: { 201: jsonResponse(McpServerSchema, 'The server'), ...errorResponses(400, 401, 403, 409) },
    }),
    async (c) => {
      const ring = await keyRingOrFail(c.env.PROVIDER_KEY_ENCRYPTION_KEY);
      const by = auditBy(c.var.actor, c.req.raw);
      const created = await createMcpServer(c.var.db, ring, settings(c.env), c.var.actor.userId, c.req.valid('json'), recordWith((m) => ({ action: 'mcp_server.created', ...by, target_type: 'mcp_server', target_id: m.id, detail: serverDetail(m) })));
      return c.json(created, 201);
    },
  )
  .openapi(
    createRoute({
      method: 'patch',
      path: '/mcp-servers/{id}',
      summary: 'Change an MCP server (owner); `headers: null` removes its headers',
      middleware: owner,
      request: { params: IdParams, body: jsonBody(PatchBody) },
      responses: { 200: jsonResponse(McpServerSchema, 'The server'), ...errorResponses(400, 401, 403, 404, 409) },
    }),
    async (c) => {
      const ring = await keyRingOrFail(c.env.PROVIDER_KEY_ENCRYPTION_KEY);
      const patch = c.req.valid('json');
      const by = auditBy(c.var.actor, c.req.raw);
      const updated = await updateMcpServerById(c.var.db, ring, settings(c.env), c.req.valid('param').id, patch, recordWith((m) => ({
        action: 'mcp_server.updated', ...by, target_type: 'mcp_server', target_id: m.id,
        detail: { ...serverDetail(m), fields: Object.keys(patch).sort() },
      })));
      return c.json(updated, 200);
    },
  )
  .openapi(
    createRoute({
      method: 'delete',
      path: '/mcp-servers/{id}',
      summary: 'Remove an MCP server (owner)',
      middleware: owner,
      request: { params: IdParams },
      responses: { 204: { description: 'Removed' }, ...errorResponses(400, 401, 403, 404) },
    }),
    async (c) => {
      const by = auditBy(c.var.actor, c.req.raw);
      await deleteMcpServer(c.var.db, c.req.valid('param').id, recordWith((id) => ({ action: 'mcp_server.deleted', ...by, target_type: 'mcp_server', target_id: id })));
      return c.body(null, 204);
    },
  )
  .openapi(
    createRoute({
      method: 'get',
      path: '/config/mcp-allowed-hosts',
      summary: "Hosts an agent's pinned MCP servers may be on (owner); empty: none",
      middleware: owner,
      responses: { 200: jsonResponse(AllowedHosts, 'The setting'), ...errorResponses(401, 403) },
    }),
    async (c) => c.json({ hosts: await getSetting(c.var.db, 'mcp_allowed_hosts') }, 200),
  )
  .openapi(
    createRoute({
      method: 'put',
      path: '/config/mcp-allowed-hosts',
      summary: "Set the hosts agents' pinned MCP servers may be on (owner): `host` or `*.domain` entries",
      middleware: owner,
      request: { body: jsonBody(AllowedHosts) },
      responses: { 200: jsonResponse(AllowedHosts, 'The setting'), ...errorResponses(400, 401, 403) },
    }),
    async (c) => {
      const hosts = await saveSetting(c.var.db, auditBy(c.var.actor, c.req.raw), 'mcp_allowed_hosts', c.req.valid('json').hosts);
      invalidateToolConfig();
      return c.json({ hosts }, 200);
    },
  );

export default app;
