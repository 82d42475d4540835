import { createRoute, z } from '@hono/zod-openapi';
import { authorize, chatActor, ownedChat } from '../authz';
import { room } from '../lib/rooms';
import { ApiError, notFound } from '../core/errors';
import { errorResponses, jsonResponse, router, UuidParam } from '../lib/openapi';
import { BodyKind, ChangeKind, getChatContext, ResourceStatus } from '../services/agent-context';

const ResourceSchema = z
  .object({
    source: z.string(),
    body_kind: BodyKind,
    body: z.unknown().openapi({ description: 'The pinned body (any JSON); null when absent or oversize' }),
    status: ResourceStatus,
    error: z.string().nullable(),
    source_path: z.string().nullable(),
    content_hash: z.string(),
    size_bytes: z.number().int(),
  })
  .openapi('ChatContextResource');

const ChatContextSchema = z
  .object({
    resources: z.array(ResourceSchema),
    dirty: z.boolean(),
    changes: z.array(z.object({ source: z.string(), change: ChangeKind })),
  })
  .openapi('ChatContext', {
    description:
      "The chat's pinned copy of its agent's context resources; `dirty` when the agent's set changed since the pin; " +
      "`changes` compares the pin with the agent's current set (empty when the agent no longer exists).",
  });

const ChatParams = z.object({ id: UuidParam('id') });
const self = authorize('self');

const app = router()
  .openapi(
    createRoute({
      method: 'get',
      path: '/{id}/context',
      summary: "The chat's pinned context resources and how they differ from its agent's current set",
      middleware: self,
      request: { params: ChatParams },
      responses: { 200: jsonResponse(ChatContextSchema, 'The pinned context'), ...errorResponses(400, 401, 404, 503) },
    }),
    async (c) => {
      const { id } = c.req.valid('param');
      await ownedChat(c.env, c.var.actor, id);
      const ctx = await getChatContext(c.var.db, id);
      if (!ctx) throw notFound();
      return c.json(ctx, 200);
    },
  )
  .openapi(
    createRoute({
      method: 'put',
      path: '/{id}/context',
      summary: "Re-pin the chat's context from its agent's current set (clears dirty)",
      middleware: self,
      request: { params: ChatParams },
      responses: {
        200: jsonResponse(ChatContextSchema, 'The new pin'),
        ...errorResponses(400, 401, 404, 409, 503),
      },
    }),
    async (c) => {
      const { id } = c.req.valid('param');
      // Through the chat's object: it checks the owner and drops the pinned context it keeps for the model.
      const r = await room(c.env, id).repinContext(chatActor(c.var.actor));
      if (!r.ok) throw new ApiError(r.status, r.message, r.detail);
      const ctx = await getChatContext(c.var.db, id);
      if (!ctx) throw notFound();
      return c.json(ctx, 200);
    },
  );

export default app;
