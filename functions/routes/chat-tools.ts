import { createRoute, z } from '@hono/zod-openapi';
import { authorize, chatActor } from '../authz';
import { errorResponses, IdParams, jsonBody, jsonResponse, router, UuidParam } from '../lib/openapi';
import { room, unwrap } from '../lib/rooms';
import { ChatTools as ToolsSchema, ToolCallDecision as Decision } from '../core/shapes/tools';
import { Chat as ChatSchema } from '../core/shapes/chat';

const ToolCallParams = z.object({
  id: UuidParam('id'),
  tool_call_id: z
    .string()
    .min(1)
    .max(256)
    .regex(/^[\x21-\x7e]+$/, { message: 'must be visible ASCII' })
    .openapi({ param: { name: 'tool_call_id', in: 'path' } }),
});
const self = authorize('self');

/** A chat's tools, and the owner's decisions on tool calls that wait for approval. */
const app = router()
  .openapi(
    createRoute({
      method: 'get',
      path: '/{id}/tools',
      summary: "The tools the chat's turns see, with their approval modes",
      middleware: self,
      request: { params: IdParams },
      responses: { 200: jsonResponse(ToolsSchema, 'The tools'), ...errorResponses(400, 401, 404, 503) },
    }),
    async (c) => {
      return c.json(unwrap(await room(c.env, c.req.valid('param').id).tools(chatActor(c.var.actor))), 200);
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
      return c.json(unwrap(r), 200);
    },
  );

export default app;
