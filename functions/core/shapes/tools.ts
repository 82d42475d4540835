/**
 * Agent tools' shapes, each written once (see `chat.ts` for the rule): MCP servers (owners), the tools a chat's turns
 * see, and the owner's decision on a tool call. The routes, the OpenAPI document and the SDK derive from these; the
 * tool parts and `pending_tool_calls` are chat shapes (`chat.ts`).
 */
import { z } from '@hono/zod-openapi';

export const ToolApproval = z.enum(['auto', 'ask', 'deny']).openapi('ToolApproval', {
  description: 'auto: calls run at once; ask: the chat owner approves each; deny: refused',
});
export type ToolApproval = z.infer<typeof ToolApproval>;

export const McpServer = z
  .object({
    id: z.uuid(),
    name: z.string(),
    url: z.string(),
    has_headers: z.boolean(),
    enabled: z.boolean(),
    tool_approval: ToolApproval,
    allowed_tools: z.array(z.string()).nullable(),
    created_at: z.iso.datetime(),
    updated_at: z.iso.datetime(),
  })
  .openapi('McpServer', { description: 'An MCP server whose tools chats may use; header values are never returned (`has_headers`).' });
export type McpServer = z.infer<typeof McpServer>;

/** A tool as a chat's turns see it (`GET /chats/{id}/tools`). */
export const Tool = z
  .object({
    name: z.string().openapi({ description: '`<server>__<tool>`, as the model calls it' }),
    server: z.string(),
    tool: z.string().openapi({ description: "The server's own name for the tool" }),
    description: z.string(),
    approval: ToolApproval,
    pinned: z.boolean().openapi({ description: "From the chat's pinned context (an agent's server), else the deployment's" }),
    input_schema: z.record(z.string(), z.unknown()),
  })
  .openapi('Tool');
export type Tool = z.infer<typeof Tool>;

export const ChatTools = z
  .object({
    tools: z.array(Tool),
    unavailable: z
      .array(z.object({ server: z.string(), reason: z.string() }))
      .openapi({ description: 'Servers whose tools are not offered, and why' }),
  })
  .openapi('ChatTools');
export type ChatTools = z.infer<typeof ChatTools>;

// ---------------------------------------------------------------- inputs

/** A server's name is the namespace of its tools (`<server>__<tool>`), so it takes what a tool name may hold. */
export const ServerName = z
  .string()
  .regex(/^[A-Za-z0-9_-]{1,32}$/, { message: 'must be 1-32 letters, digits, "_" or "-"' })
  .refine((n) => !n.includes('__'), { message: 'must not contain "__" (it separates the server from the tool)' });

const RESERVED_HEADERS = new Set(['host', 'content-length', 'content-type', 'accept', 'mcp-session-id', 'mcp-protocol-version', 'connection']);
/** Headers sent with every request to the server (e.g. `authorization`). Names are HTTP tokens. */
export const ServerHeaders = z
  .record(z.string().regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,128}$/, { message: 'must be an HTTP header name' }), z.string().max(8192))
  .refine((h) => Object.keys(h).length <= 32, { message: 'at most 32 headers' })
  .refine((h) => !Object.keys(h).some((k) => RESERVED_HEADERS.has(k.toLowerCase())), { message: 'must not set a protocol header' });
export type ServerHeaders = z.infer<typeof ServerHeaders>;

export const AllowedTools = z.array(z.string().min(1).max(128)).max(500);

const ServerFields = {
  name: ServerName.describe('The namespace of its tools: `<name>__<tool>`'),
  url: z.string().max(2048).describe('Streamable HTTP endpoint: https on a public host (see MCP_ALLOW_INSECURE_URLS)'),
  headers: ServerHeaders.nullable().optional().describe('Sent with every request (sealed at rest); null removes them'),
  enabled: z.boolean().optional(),
  tool_approval: ToolApproval.optional().describe('Default ask'),
  allowed_tools: AllowedTools.nullable().optional().describe('Only these tools are offered; null or absent: all'),
};
export const NewMcpServer = z.object(ServerFields).strict().openapi('NewMcpServer');
export type NewMcpServer = z.infer<typeof NewMcpServer>;
export const McpServerPatch = z.object(ServerFields).partial().strict().openapi('McpServerPatch');
export type McpServerPatch = z.infer<typeof McpServerPatch>;

/** Hosts (`host` or `*.domain`) an agent's pinned MCP servers may be on; empty: none. */
export const McpAllowedHostList = z
  .array(z.string().trim().toLowerCase().regex(/^(\*\.)?[a-z0-9.:[\]-]{1,253}$/, { message: 'must be a host name or *.domain' }))
  .max(100);
export const McpAllowedHosts = z.object({ hosts: McpAllowedHostList }).strict().openapi('McpAllowedHosts');

export const ToolCallDecision = z
  .object({ decision: z.enum(['approve', 'deny']), reason: z.string().trim().max(2000).optional() })
  .strict()
  .openapi('ToolCallDecision');
export type ToolCallDecision = z.infer<typeof ToolCallDecision>;
