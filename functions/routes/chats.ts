import { createRoute, z } from '@hono/zod-openapi';
import type { Context } from 'hono';
import { authorize, chatActor, type AuthedEnv } from '../authz';
import { badRequest } from '../core/errors';
import { chatIdForKey, IdempotencyHeaders } from '../lib/idempotency';
import type { PostResult } from '../core/room-api';
import { room, unwrap } from '../lib/rooms';
import { errorResponses, IdParams, IdQuery, jsonBody, jsonResponse, router, UuidParam } from '../lib/openapi';
import { Labels, titleFrom, UserContent, type Part, type Role } from '../core/chats';
import { listChats } from '../services/chat-list';
import { listChatsMatching } from '../core/search';
import { SearchQueryText } from '../core/shapes/search';
import { chatsSharedWith } from '../services/sharing';
import { Chat, ChatStatus, Message, QueuedMessage } from '../core/shapes/chat';
import { agentExists } from '../services/agent-context';
import { resolveFileParts } from '../services/files';

const Content = UserContent.openapi({ description: 'A string (one text part) or a list of text and file parts (at most 10 files)' });
const MessageId = z
  .string()
  .regex(/^[1-9][0-9]{0,17}$/, { message: 'must be a message id' })
  .transform(Number)
  .openapi({ param: { name: 'message_id', in: 'path' }, type: 'integer' });
const QueueParams = z.object({ id: UuidParam('id'), qid: UuidParam('qid') });

const self = authorize('self');

function postResponse(c: Context<AuthedEnv>, r: PostResult) {
  return r.kind === 'message' ? c.json({ message: r.message }, 201) : c.json({ queued_message: r.queued_message }, 202);
}

const app = router()
  .openapi(
    createRoute({
      method: 'post',
      path: '/',
      summary: 'Start a chat: inserts it with its first messages and starts a turn',
      middleware: self,
      request: {
        headers: IdempotencyHeaders,
        body: jsonBody(
          z
            .object({
              content: Content,
              model_config_id: z.uuid().optional(),
              title: z.string().trim().max(256).optional(),
              labels: Labels.optional(),
              agent_id: z.uuid().optional(),
            })
            .strict(),
        ),
      },
      responses: { 201: jsonResponse(Chat, 'The chat'), ...errorResponses(400, 401, 402, 409, 503) },
    }),
    async (c) => {
      const body = c.req.valid('json');
      const key = c.req.valid('header')['idempotency-key'] ?? null;
      // Agents are deployment-wide: any user may start a chat with any agent (the chat pins a copy of its context).
      if (body.agent_id !== undefined && !(await agentExists(c.var.db, body.agent_id))) {
        throw badRequest('Unknown agent.', [{ field: 'agent_id', detail: 'no agent has this id' }]);
      }
      const content: Part[] = await resolveFileParts(c.var.db, c.var.actor.userId, body.content);
      // The deployment system prompt is added by the chat's object, read on its own warm connection inside the
      // creation transaction (no Worker-side Postgres session for it).
      const messages: { role: Role; content: Part[] }[] = [{ role: 'user', content }];
      // A key names the chat, so a replay reaches the same object, which answers with the first response.
      const id = key === null ? crypto.randomUUID() : await chatIdForKey(c.var.actor.userId, key);
      const chat = unwrap(
        await room(c.env, id).create(chatActor(c.var.actor), {
          id,
          title: body.title ?? titleFrom(content),
          titleSource: body.title !== undefined ? 'owner' : 'first_words',
          labels: body.labels ?? {},
          agentId: body.agent_id ?? null,
          modelConfigId: body.model_config_id ?? null,
          messages,
          idempotencyKey: key,
        }),
      );
      return c.json(chat, 201);
    },
  )
  .openapi(
    createRoute({
      method: 'get',
      path: '/',
      summary: 'Your chats (or, with shared=true, the chats shared with you), most recently active first; with q, only those whose title or messages match',
      middleware: self,
      request: {
        query: z.object({
          q: SearchQueryText.optional(),
          archived: z.enum(['true', 'false']).default('false').transform((v) => v === 'true'),
          shared: z
            .enum(['true', 'false'])
            .default('false')
            .transform((v) => v === 'true')
            .openapi({ description: 'true: the chats shared with you, directly or through a group (`access` is `viewer`)' }),
          limit: z.coerce.number().int().min(1).max(200).default(50),
          offset: z.coerce.number().int().min(0).max(1_000_000).default(0),
        }),
      },
      responses: { 200: jsonResponse(z.array(Chat), 'Chats'), ...errorResponses(400, 401) },
    }),
    async (c) => {
      const q = c.req.valid('query');
      const { userId } = c.var.actor;
      if (q.q !== undefined) return c.json(await listChatsMatching(c.var.db, userId, q.q, q.shared, q.archived, q.limit, q.offset), 200);
      const list = q.shared ? chatsSharedWith : listChats;
      return c.json(await list(c.var.db, userId, q.archived, q.limit, q.offset), 200);
    },
  )
  .openapi(
    createRoute({
      method: 'get',
      path: '/{id}',
      summary: 'One chat',
      middleware: self,
      request: { params: IdParams },
      responses: { 200: jsonResponse(Chat, 'The chat'), ...errorResponses(400, 401, 404, 503) },
    }),
    async (c) => c.json(unwrap(await room(c.env, c.req.valid('param').id).get(chatActor(c.var.actor))), 200),
  )
  .openapi(
    createRoute({
      method: 'patch',
      path: '/{id}',
      summary: 'Rename, archive or relabel a chat',
      middleware: self,
      request: {
        params: IdParams,
        body: jsonBody(
          z
            .object({ title: z.string().trim().max(256).optional(), archived: z.boolean().optional(), labels: Labels.optional() })
            .strict(),
        ),
      },
      responses: { 200: jsonResponse(Chat, 'The chat'), ...errorResponses(400, 401, 404, 503) },
    }),
    async (c) => {
      const { id } = c.req.valid('param');
      return c.json(unwrap(await room(c.env, id).updateMeta(chatActor(c.var.actor), c.req.valid('json'))), 200);
    },
  )
  .openapi(
    createRoute({
      method: 'delete',
      path: '/{id}',
      summary: 'Delete a chat and everything in it',
      middleware: self,
      request: { params: IdParams },
      responses: { 204: { description: 'Deleted' }, ...errorResponses(400, 401, 404, 503) },
    }),
    async (c) => {
      unwrap(await room(c.env, c.req.valid('param').id).deleteChat(chatActor(c.var.actor)));
      return c.body(null, 204);
    },
  )
  .openapi(
    createRoute({
      method: 'get',
      path: '/{id}/messages',
      summary: 'Live messages, ascending by id; with only before_id, the newest page before it; with around, the page around a message',
      middleware: self,
      request: {
        params: IdParams,
        query: z.object({
          after_id: IdQuery.optional(),
          before_id: IdQuery.optional(),
          around: IdQuery.optional().openapi({
            description: 'A message id: the page around it (the older half of `limit` before it, it and the newer ones after); not with after_id or before_id',
          }),
          limit: z.coerce.number().int().min(1).max(200).default(50),
        }),
      },
      responses: { 200: jsonResponse(z.object({ messages: z.array(Message) }), 'Messages'), ...errorResponses(400, 401, 404, 503) },
    }),
    async (c) => {
      const q = c.req.valid('query');
      if (q.around !== undefined && (q.after_id !== undefined || q.before_id !== undefined)) {
        throw badRequest('Validation failed.', [{ field: 'around', detail: 'cannot be combined with after_id or before_id' }]);
      }
      // The chat's object answers from its cache when it holds the page, else from Postgres.
      const messages = unwrap(await room(c.env, c.req.valid('param').id).messages(chatActor(c.var.actor), q));
      return c.json({ messages }, 200);
    },
  )
  .openapi(
    createRoute({
      method: 'post',
      path: '/{id}/messages',
      summary: 'Send a message: 201 when its turn starts now, 202 when queued behind a busy chat',
      middleware: self,
      request: {
        params: IdParams,
        headers: IdempotencyHeaders,
        body: jsonBody(
          z
            .object({
              content: Content,
              model_config_id: z.uuid().optional(),
              busy_behavior: z.enum(['queue', 'interrupt']).default('queue'),
            })
            .strict(),
        ),
      },
      responses: {
        201: jsonResponse(z.object({ message: Message }), 'The message; its turn started'),
        202: jsonResponse(z.object({ queued_message: QueuedMessage }), 'Queued behind the running turn'),
        ...errorResponses(400, 401, 402, 404, 409, 503),
      },
    }),
    async (c) => {
      const { id } = c.req.valid('param');
      const body = c.req.valid('json');
      const r = unwrap(
        await room(c.env, id).postMessage(chatActor(c.var.actor), {
          content: await resolveFileParts(c.var.db, c.var.actor.userId, body.content),
          modelConfigId: body.model_config_id ?? null,
          busyBehavior: body.busy_behavior,
          idempotencyKey: c.req.valid('header')['idempotency-key'] ?? null,
        }),
      );
      return postResponse(c, r);
    },
  )
  .openapi(
    createRoute({
      method: 'patch',
      path: '/{id}/messages/{message_id}',
      summary: 'Edit a user message: later messages are dropped and a new turn starts',
      middleware: self,
      request: {
        params: z.object({ id: UuidParam('id'), message_id: MessageId }),
        body: jsonBody(z.object({ content: Content }).strict()),
      },
      responses: { 200: jsonResponse(z.object({ message: Message }), 'The edited message'), ...errorResponses(400, 401, 402, 404, 503) },
    }),
    async (c) => {
      const { id, message_id } = c.req.valid('param');
      const content = await resolveFileParts(c.var.db, c.var.actor.userId, c.req.valid('json').content);
      const message = unwrap(await room(c.env, id).editMessage(chatActor(c.var.actor), { messageId: message_id, content }));
      return c.json({ message }, 200);
    },
  )
  .openapi(
    createRoute({
      method: 'post',
      path: '/{id}/interrupt',
      summary: 'Stop the running turn; its partial text is kept',
      middleware: self,
      request: { params: IdParams },
      responses: {
        202: jsonResponse(z.object({ status: ChatStatus }), 'Accepted'),
        ...errorResponses(400, 401, 404, 503),
      },
    }),
    async (c) => c.json(unwrap(await room(c.env, c.req.valid('param').id).interrupt(chatActor(c.var.actor))), 202),
  )
  .openapi(
    createRoute({
      method: 'get',
      path: '/{id}/queue',
      summary: 'Queued messages, in the order they will run',
      middleware: self,
      request: { params: IdParams },
      responses: { 200: jsonResponse(z.object({ queued_messages: z.array(QueuedMessage) }), 'The queue'), ...errorResponses(400, 401, 404, 503) },
    }),
    async (c) => c.json({ queued_messages: unwrap(await room(c.env, c.req.valid('param').id).listQueue(chatActor(c.var.actor))) }, 200),
  )
  .openapi(
    createRoute({
      method: 'delete',
      path: '/{id}/queue/{qid}',
      summary: 'Remove a queued message',
      middleware: self,
      request: { params: QueueParams },
      responses: { 204: { description: 'Removed' }, ...errorResponses(400, 401, 404, 503) },
    }),
    async (c) => {
      const { id, qid } = c.req.valid('param');
      unwrap(await room(c.env, id).deleteQueued(chatActor(c.var.actor), qid));
      return c.body(null, 204);
    },
  )
  .openapi(
    createRoute({
      method: 'post',
      path: '/{id}/queue/{qid}/promote',
      summary: 'Run a queued message next: at once (201) when the chat is idle, else first in line (202)',
      middleware: self,
      request: { params: QueueParams },
      responses: {
        201: jsonResponse(z.object({ message: Message }), 'Sent; its turn started'),
        202: jsonResponse(z.object({ queued_message: QueuedMessage }), 'First in the queue'),
        ...errorResponses(400, 401, 402, 404, 503),
      },
    }),
    async (c) => {
      const { id, qid } = c.req.valid('param');
      return postResponse(c, unwrap(await room(c.env, id).promoteQueued(chatActor(c.var.actor), qid)));
    },
  );

export default app;
