import { createRoute, z } from '@hono/zod-openapi';
import { authorize, chatActor } from '../authz';
import { ApiError } from '../lib/errors';
import { errorResponses, jsonBody, jsonResponse, router, UuidParam } from '../lib/openapi';
import { room } from '../lib/rooms';
import { ToolApproval } from '../services/mcp-servers';
import { ChatSchema } from './chats';

const ToolSchema = z
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
const ToolsSchema = z
  .object({
    tools: z.array(ToolSchema),
    unavailable: z.array(z.object({ server: z.string(), reason: z.string() })).openapi({ description: 'Servers whose tools are not offered, and why' }),
  })
  .openapi('ChatTools');

const ToolCallParams = z.object({
  id: UuidParam('id'),
  tool_call_id: z
    .string()
    .min(1)
    .max(256)
    .regex(/^[\x21-\x7e]+$/, { message: 'must be visible ASCII' })
    .openapi({ param: { name: 'tool_call_id', in: 'path' } }),
});
const Decision = z
  .object({ decision: z.enum(['approve', 'deny']), reason: z.string().trim().max(2000).optional() })
  .strict()
  .openapi('ToolCallDecision');

const self = authorize('self');

/** A chat's tools, and the owner's decisions on tool calls that wait for approval. */
const app = router()
  .openapi(
    createRoute({
      method: 'get',
      path: '/{id}/tools',
      summary: "The tools the chat's turns see, with their approval modes",
      middleware: self,
      request: { params: z.object({ id: UuidParam('id') }) },
      responses: { 200: jsonResponse(ToolsSchema, 'The tools'), ...errorResponses(400, 401, 404, 503) },
    }),
    async (c) => {
      const r = await room(c.env, c.req.valid('param').id).tools(chatActor(c.var.actor));
      if (!r.ok) throw new ApiError(r.status, r.message);
      return c.json(r.value, 200);
    },
  )
  .openapi(
    createRoute({
      method: 'post',
      path: '/{id}/tool-calls/{tool_call_id}',
      summary: 'Approve or deny a tool call that waits for approval (status requires_action)',
      middleware: self,
      request: { params: ToolCallParams, body: jsonBody(Decision) },
      responses: {
        200: jsonResponse(ChatSchema, 'Accepted: the call runs (or is answered as denied) and the turn goes on; the chat after it'),
        ...errorResponses(400, 401, 404, 409, 503),
      },
    }),
    async (c) => {
      const { id, tool_call_id } = c.req.valid('param');
      const body = c.req.valid('json');
      const r = await room(c.env, id).decideToolCall(chatActor(c.var.actor), {
        toolCallId: tool_call_id,
        decision: body.decision,
        reason: body.reason ?? null,
      });
      if (!r.ok) throw new ApiError(r.status, r.message);
      return c.json(r.value, 200);
    },
  );

export default app;
