import { createRoute, z } from '@hono/zod-openapi';
import { authorize, authorizeAgent } from '../authz';
import { errorResponses, IdParams, jsonBody, jsonResponse, router } from '../lib/openapi';
import { deleteAgent, rotateAgentToken } from '../services/agents';
import {
  ContextPush,
  MAX_CONTEXT_BODY_BYTES,
  MAX_CONTEXT_RESOURCES,
  MAX_CONTEXT_TOTAL_BYTES,
  createAgent,
  prepareResources,
  pushAgentContext,
} from '../services/agent-context';
import { log } from '../core/log';

const NewAgentSchema = z
  .object({ id: z.uuid(), name: z.string(), token: z.string() })
  .openapi('NewAgent', { description: 'The agent and its token; the token is shown only in this response.' });

const PUSH_DESCRIPTION =
  "The body is the agent's whole set of context resources; it replaces the previous one (last writer wins). " +
  `At most ${MAX_CONTEXT_RESOURCES} resources, each source unique and 1-1024 characters. A body over ${MAX_CONTEXT_BODY_BYTES} ` +
  'bytes (its canonical JSON, UTF-8) is stored with status "oversize" and no body; the stored bodies may total at most ' +
  `${MAX_CONTEXT_TOTAL_BYTES} bytes. The server computes content_hash, size_bytes and the aggregate hash; when the ` +
  "aggregate hash changed, the agent's live chats pinned at another hash become dirty.";

const manage = authorize('agents.manage');

const app = router()
  .openapi(
    createRoute({
      method: 'post',
      path: '/',
      summary: 'Create an agent (owner); its token is returned once',
      middleware: manage,
      request: { body: jsonBody(z.object({ name: z.string().trim().min(1, { message: 'must not be empty' }).max(128) }).strict()) },
      responses: { 201: jsonResponse(NewAgentSchema, 'The agent and its token'), ...errorResponses(400, 401, 403, 503) },
    }),
    async (c) => {
      const { name } = c.req.valid('json');
      return c.json(await createAgent(c.var.db, c.var.actor.userId, name), 201);
    },
  )
  .openapi(
    createRoute({
      method: 'post',
      path: '/{id}/token',
      summary: "Give an agent a new token (owner); the old one stops working at once",
      middleware: manage,
      request: { params: IdParams },
      responses: { 200: jsonResponse(NewAgentSchema, 'The agent and its new token'), ...errorResponses(400, 401, 403, 404, 503) },
    }),
    async (c) => c.json(await rotateAgentToken(c.var.db, c.req.valid('param').id), 200),
  )
  .openapi(
    createRoute({
      method: 'delete',
      path: '/{id}',
      summary: 'Delete an agent and its context resources (owner); chats keep their pinned copies',
      middleware: manage,
      request: { params: IdParams },
      responses: { 204: { description: 'Deleted' }, ...errorResponses(400, 401, 403, 404, 503) },
    }),
    async (c) => {
      await deleteAgent(c.var.db, c.req.valid('param').id);
      return c.body(null, 204);
    },
  )
  .openapi(
    createRoute({
      method: 'put',
      path: '/me/context',
      summary: "Replace the calling agent's context resources (agent token); its chats become dirty when the set changed",
      security: [{ bearer: [] }],
      middleware: [authorizeAgent()] as const,
      description: PUSH_DESCRIPTION,
      request: { body: jsonBody(ContextPush) },
      responses: { 204: { description: 'Stored' }, ...errorResponses(400, 401, 503) },
    }),
    async (c) => {
      const prepared = await prepareResources(c.req.valid('json'));
      const out = await pushAgentContext(c.var.db, c.var.agent.id, prepared);
      if (out.dirtyChatIds.length) {
        // Best effort: tell each newly dirty chat's subscribers. The mark itself is already committed.
        const sent = await Promise.allSettled(out.dirtyChatIds.map((id) => c.env.CHAT_ROOM.getByName(id).contextDirty()));
        const failed = sent.filter((s) => s.status === 'rejected').length;
        if (failed) log('warn', 'context_dirty notices failed', { agent_id: c.var.agent.id, failed });
      }
      log('info', 'agent context pushed', {
        agent_id: c.var.agent.id,
        resources: prepared.rows.length,
        version: out.version,
        changed: out.changed,
        dirty_chats: out.dirtyChatIds.length,
      });
      return c.body(null, 204);
    },
  );

export default app;
