/** A chat's stream: the WebSocket route and its counters. */
import { createRoute, z } from '@hono/zod-openapi';
import { authorize } from '../authz';
import { errorResponses, IdParams, IdQuery, jsonResponse, router } from '../lib/openapi';
import { assertAllowedOrigin } from '../lib/origin';
import { room } from '../lib/rooms';
import { StreamStats } from '../shapes/stream';

const app = router()
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
      middleware: authorize('self'),
      request: { params: IdParams, query: z.object({ after_id: IdQuery.optional() }) },
      responses: {
        101: { description: 'Switching to the WebSocket protocol' },
        426: { description: 'Not a WebSocket upgrade' },
        ...errorResponses(400, 401, 403, 404, 503),
      },
    }),
    async (c) => {
      assertAllowedOrigin(c.req.raw, c.env);
      const { id } = c.req.valid('param');
      const { after_id } = c.req.valid('query');
      // The chat's object checks the owner (404) and the upgrade (426) before it accepts the socket. What it is told
      // comes from here only, never from the client.
      const headers = new Headers(c.req.raw.headers);
      for (const name of [...headers.keys()]) if (name.startsWith('x-chatd-')) headers.delete(name);
      headers.set('x-chatd-user', c.var.actor.userId);
      headers.set('x-chatd-key', c.var.actor.keyId);
      headers.set('x-chatd-after-id', String(after_id ?? 0));
      return await room(c.env, id).fetch(new Request(c.req.raw, { headers }));
    },
  );

export default app;
