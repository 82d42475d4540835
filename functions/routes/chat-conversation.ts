/**
 * Conversation tools (docs/chats.md "Conversation tools"): fork, regenerate, export and import. Titles written by a model are
 * the chat object's (durable-objects/room/titles.ts); their setting is in chat-config.ts.
 */
import { createRoute, z } from '@hono/zod-openapi';
import { authorize, chatActor } from '../authz';
import { room, unwrap } from '../lib/rooms';
import { errorResponses, IdParams, jsonBody, jsonResponse, router } from '../lib/openapi';
import { exportFileName, exportJson, exportMarkdown } from '../lib/chat-export';
import { Chat } from '../core/shapes/chat';
import { ChatExport, ForkRequest, RegenerateRequest } from '../core/shapes/export';

const self = authorize('self');

const app = router()
  .openapi(
    createRoute({
      method: 'post',
      path: '/import',
      summary: 'Import a chat from its JSON export: a new chat of yours with the same messages (no turn runs)',
      middleware: self,
      request: { body: jsonBody(ChatExport) },
      responses: { 201: jsonResponse(Chat, 'The new chat'), ...errorResponses(400, 401, 409, 413, 503) },
    }),
    async (c) => {
      const body = c.req.valid('json');
      const id = crypto.randomUUID();
      const chat = unwrap(
        await room(c.env, id).importChat(chatActor(c.var.actor), {
          title: body.chat.title,
          labels: body.chat.labels,
          messages: body.messages.map((m) => ({ role: m.role, content: m.content, createdAt: m.created_at })),
        }),
      );
      return c.json(chat, 201);
    },
  )
  .openapi(
    createRoute({
      method: 'post',
      path: '/{id}/fork',
      summary: "Fork a chat at a message: a new chat of the caller's with copies of the live messages up to it",
      middleware: self,
      request: { params: IdParams, body: jsonBody(ForkRequest) },
      responses: { 201: jsonResponse(Chat, 'The fork'), ...errorResponses(400, 401, 404, 503) },
    }),
    async (c) => {
      const { id } = c.req.valid('param');
      const fork = unwrap(await room(c.env, id).fork(chatActor(c.var.actor), { id: crypto.randomUUID(), messageId: c.req.valid('json').message_id }));
      return c.json(fork, 201);
    },
  )
  .openapi(
    createRoute({
      method: 'post',
      path: '/{id}/regenerate',
      summary: 'Answer the last user message again: the answer after it goes (as an edit removes it) and a new one runs',
      middleware: self,
      request: { params: IdParams, body: jsonBody(RegenerateRequest, false) },
      responses: { 200: jsonResponse(Chat, 'The chat, running'), ...errorResponses(400, 401, 402, 404, 409, 503) },
    }),
    async (c) => {
      const { id } = c.req.valid('param');
      const body = c.req.valid('json') as z.infer<typeof RegenerateRequest> | undefined;
      const chat = unwrap(await room(c.env, id).regenerate(chatActor(c.var.actor), { modelConfigId: body?.model_config_id ?? null }));
      return c.json(chat, 200);
    },
  )
  .openapi(
    createRoute({
      method: 'get',
      path: '/{id}/export',
      summary: 'The chat as a download: JSON (the format POST /chats/import takes) or Markdown',
      middleware: self,
      request: { params: IdParams, query: z.object({ format: z.enum(['json', 'markdown']).default('json') }) },
      responses: {
        200: {
          description: 'The export, as an attachment',
          content: { 'application/json': { schema: ChatExport }, 'text/markdown': { schema: z.string() } },
        },
        ...errorResponses(400, 401, 404, 503),
      },
    }),
    async (c) => {
      const { id } = c.req.valid('param');
      const { chat, messages } = unwrap(await room(c.env, id).exportChat(chatActor(c.var.actor)));
      if (c.req.valid('query').format === 'json') {
        return c.json(exportJson(chat, messages), 200, { 'content-disposition': `attachment; filename="${exportFileName(chat, 'json')}"` });
      }
      return c.body(exportMarkdown(chat, messages), 200, {
        'content-type': 'text/markdown; charset=utf-8',
        'content-disposition': `attachment; filename="${exportFileName(chat, 'md')}"`,
      });
    },
  );

export default app;
