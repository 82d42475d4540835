/** A chat's stream: the WebSocket route, the tickets that open it without a token, and its counters. */
import { createRoute, z } from '@hono/zod-openapi';
import { authorize, authorizeStream, chatActor } from '../authz';
import { unauthorized } from '../core/errors';
import { errorResponses, IdParams, IdQuery, jsonResponse, router } from '../lib/openapi';
import { assertAllowedOrigin } from '../lib/origin';
import { room, unwrap } from '../lib/rooms';
import { StreamTicket } from '../core/shapes/chat';
import { StreamStats } from '../core/shapes/stream';

const Ticket = z
  .string()
  .regex(/^[A-Za-z0-9]{1,256}$/, { message: 'must be a stream ticket' })
  .openapi({ description: 'A ticket from `POST /chats/{id}/stream-ticket`, instead of a token (single use, 60 s)' });

const app = router()
  .openapi(
    createRoute({
      method: 'post',
      path: '/{id}/stream-ticket',
      summary: 'A single-use ticket (60 s) to open the stream without a token, for browsers: `?ticket=`',
      middleware: authorize('self'),
      request: { params: IdParams },
      responses: { 201: jsonResponse(StreamTicket, 'The ticket'), ...errorResponses(400, 401, 404, 503) },
    }),
    async (c) => {
      const actor = c.var.actor;
      const ticket = unwrap(await room(c.env, c.req.valid('param').id).mintTicket(chatActor(actor), actor.keyId, actor.expiresAt));
      return c.json(ticket, 201);
    },
  )
  .openapi(
    createRoute({
      method: 'get',
      path: '/{id}/stream-stats',
      summary: "A chat's stream counters (owners): catch-ups served from the cache vs from Postgres",
      middleware: authorize('deployment.manage'),
      request: { params: IdParams },
      responses: { 200: jsonResponse(StreamStats, 'Counters since the chat object last started'), ...errorResponses(400, 401, 403) },
    }),
    async (c) => c.json(await room(c.env, c.req.valid('param').id).stats(), 200),
  )
  .openapi(
    createRoute({
      method: 'get',
      path: '/{id}/stream',
      summary: 'WebSocket stream of the chat: frames are `StreamFrame`s (see API.md, "The stream")',
      middleware: authorizeStream(),
      request: { params: IdParams, query: z.object({ after_id: IdQuery.optional(), ticket: Ticket.optional() }) },
      responses: {
        101: { description: 'Switching to the WebSocket protocol' },
        426: { description: 'Not a WebSocket upgrade' },
        ...errorResponses(400, 401, 403, 404, 503),
      },
    }),
    async (c) => {
      assertAllowedOrigin(c.req.raw, c.env);
      const { id } = c.req.valid('param');
      const { after_id, ticket } = c.req.valid('query');
      // What the chat's object is told comes from here only, never from the client.
      const headers = new Headers(c.req.raw.headers);
      for (const name of [...headers.keys()]) if (name.startsWith('x-chatd-')) headers.delete(name);
      headers.set('x-chatd-after-id', String(after_id ?? 0));
      if (ticket !== undefined) {
        // The object holds the tickets it minted: it checks this one (401), then the owner (404) and the upgrade (426).
        headers.set('x-chatd-ticket', ticket);
      } else {
        const actor = c.var.actor;
        if (!actor) throw unauthorized();
        headers.set('x-chatd-user', actor.userId);
        headers.set('x-chatd-key', actor.keyId);
        headers.set('x-chatd-key-expires', String(actor.expiresAt));
        headers.set('x-chatd-groups', actor.groupIds.join(','));
      }
      return await room(c.env, id).fetch(new Request(c.req.raw, { headers }));
    },
  );

export default app;
