/**
 * /api/v2/chats/{id}/acl and /share-links: the chat's owner shares it with viewers (users, groups) and makes read-only
 * links. The chat's object decides who is the owner (`ownChat`: 403 for a viewer, 404 for anyone else).
 */
import { createRoute, z } from '@hono/zod-openapi';
import { authorize, ownChat } from '../authz';
import { errorResponses, IdParams, jsonBody, jsonResponse, router, UuidParam } from '../lib/openapi';
import { ChatAcl, ChatAclPatch, NewShareLink, ShareLink } from '../core/shapes/sharing';
import { audited, auditBy, recordWith } from '../services/audit';
import { chatAcl, createShareLink, MAX_LINK_SECONDS, patchChatAcl, revokeShareLink, shareLinks } from '../services/sharing';

const self = authorize('self');

const app = router()
  .openapi(
    createRoute({
      method: 'get',
      path: '/{id}/acl',
      summary: "Who the chat is shared with (the chat's owner)",
      middleware: self,
      request: { params: IdParams },
      responses: { 200: jsonResponse(ChatAcl, 'The viewers'), ...errorResponses(400, 401, 403, 404, 503) },
    }),
    async (c) => {
      const chat = await ownChat(c.env, c.var.actor, c.req.valid('param').id);
      return c.json(await chatAcl(c.var.db, chat.id), 200);
    },
  )
  .openapi(
    createRoute({
      method: 'patch',
      path: '/{id}/acl',
      summary: "Share the chat with users and groups, or stop (the chat's owner): `viewer` grants, null revokes",
      middleware: self,
      request: { params: IdParams, body: jsonBody(ChatAclPatch) },
      responses: { 200: jsonResponse(ChatAcl, 'The viewers'), ...errorResponses(400, 401, 403, 404, 503) },
    }),
    async (c) => {
      const chat = await ownChat(c.env, c.var.actor, c.req.valid('param').id);
      const by = auditBy(c.var.actor, c.req.raw);
      const acl = await patchChatAcl(c.env, c.var.db, chat, c.req.valid('json'), recordWith((p) => ({
        action: 'chat.acl_updated', ...by, target_type: 'chat', target_id: chat.id, detail: { users: p.users ?? {}, groups: p.groups ?? {} },
      })));
      return c.json(acl, 200);
    },
  )
  .openapi(
    createRoute({
      method: 'post',
      path: '/{id}/share-links',
      summary: "A read-only link to the chat as it is now (the chat's owner); the token is shown once",
      middleware: self,
      request: {
        params: IdParams,
        body: jsonBody(z.object({ expires_in_seconds: z.number().int().min(1).max(MAX_LINK_SECONDS).optional() }).strict(), false),
      },
      responses: { 201: jsonResponse(NewShareLink, 'The link'), ...errorResponses(400, 401, 403, 404, 503) },
    }),
    async (c) => {
      const chat = await ownChat(c.env, c.var.actor, c.req.valid('param').id);
      const body = c.req.valid('json');
      const by = auditBy(c.var.actor, c.req.raw);
      const link = await audited(
        c.var.db,
        (tx) => createShareLink(tx, chat.id, body.expires_in_seconds ?? null, new URL(c.req.url).origin),
        // The link's id and expiry only: its token (and the URL holding it) never goes in an event.
        (l) => ({ action: 'share_link.created', ...by, target_type: 'share_link', target_id: l.id, detail: { chat_id: chat.id, expires_at: l.expires_at } }),
      );
      return c.json(link, 201);
    },
  )
  .openapi(
    createRoute({
      method: 'get',
      path: '/{id}/share-links',
      summary: "The chat's share links (the chat's owner); tokens are never shown again",
      middleware: self,
      request: { params: IdParams },
      responses: { 200: jsonResponse(z.array(ShareLink), 'Links'), ...errorResponses(400, 401, 403, 404, 503) },
    }),
    async (c) => {
      const chat = await ownChat(c.env, c.var.actor, c.req.valid('param').id);
      return c.json(await shareLinks(c.var.db, chat.id), 200);
    },
  )
  .openapi(
    createRoute({
      method: 'delete',
      path: '/{id}/share-links/{link_id}',
      summary: "Revoke a share link (the chat's owner): it answers 404 from now on",
      middleware: self,
      request: { params: z.object({ id: UuidParam('id'), link_id: UuidParam('link_id') }) },
      responses: { 204: { description: 'Revoked' }, ...errorResponses(400, 401, 403, 404, 503) },
    }),
    async (c) => {
      const p = c.req.valid('param');
      const chat = await ownChat(c.env, c.var.actor, p.id);
      const by = auditBy(c.var.actor, c.req.raw);
      await audited(
        c.var.db,
        (tx) => revokeShareLink(tx, chat.id, p.link_id),
        () => ({ action: 'share_link.deleted', ...by, target_type: 'share_link', target_id: p.link_id, detail: { chat_id: chat.id } }),
      );
      return c.body(null, 204);
    },
  );

export default app;
