/** /api/v2/groups (owner): groups and their members; chats are shared with groups (see routes/chat-sharing.ts). */
import { createRoute, z } from '@hono/zod-openapi';
import { authorize } from '../authz';
import { errorResponses, IdParams, jsonBody, jsonResponse, router, UuidParam } from '../lib/openapi';
import { Group, GroupMember } from '../core/shapes/sharing';
import { audit, audited, requestIp } from '../services/audit';
import { addMember, createGroup, deleteGroup, listGroups, members, removeMember, renameGroupTo } from '../services/groups';

const manage = authorize('groups.manage');
const GroupBody = z.object({ name: z.string().trim().min(1, { message: 'must not be empty' }).max(128) }).strict();
const MemberParams = z.object({ id: UuidParam('id'), user_id: UuidParam('user_id') });

const app = router()
  .openapi(
    createRoute({
      method: 'get',
      path: '/',
      summary: 'Every group, by name (owner)',
      middleware: manage,
      responses: { 200: jsonResponse(z.array(Group), 'Groups'), ...errorResponses(401, 403, 503) },
    }),
    async (c) => c.json(await listGroups(c.var.db), 200),
  )
  .openapi(
    createRoute({
      method: 'post',
      path: '/',
      summary: 'Create a group (owner); names are unique, case-insensitively',
      middleware: manage,
      request: { body: jsonBody(GroupBody) },
      responses: { 201: jsonResponse(Group, 'The group'), ...errorResponses(400, 401, 403, 409, 503) },
    }),
    async (c) => {
      const a = c.var.actor;
      const group = await audited(
        c.var.db,
        (tx) => createGroup(tx, c.req.valid('json').name),
        (g) => ({ action: 'group.created', actor: { id: a.userId, email: a.email }, ip: requestIp(c.req.raw), target_type: 'group', target_id: g.id, detail: { name: g.name } }),
      );
      return c.json(group, 201);
    },
  )
  .openapi(
    createRoute({
      method: 'patch',
      path: '/{id}',
      summary: 'Rename a group (owner)',
      middleware: manage,
      request: { params: IdParams, body: jsonBody(GroupBody) },
      responses: { 200: jsonResponse(Group, 'The group'), ...errorResponses(400, 401, 403, 404, 409, 503) },
    }),
    async (c) => {
      const a = c.var.actor;
      const group = await audited(
        c.var.db,
        (tx) => renameGroupTo(tx, c.req.valid('param').id, c.req.valid('json').name),
        (g) => ({ action: 'group.updated', actor: { id: a.userId, email: a.email }, ip: requestIp(c.req.raw), target_type: 'group', target_id: g.id, detail: { name: g.name } }),
      );
      return c.json(group, 200);
    },
  )
  .openapi(
    createRoute({
      method: 'delete',
      path: '/{id}',
      summary: "Delete a group (owner): its members lose at once the chats it gave them (their streams close with 4403)",
      middleware: manage,
      request: { params: IdParams },
      responses: { 204: { description: 'Deleted' }, ...errorResponses(400, 401, 403, 404, 503) },
    }),
    async (c) => {
      const a = c.var.actor;
      const id = c.req.valid('param').id;
      await deleteGroup(c.env, c.var.db, id, (tx) =>
        audit(tx, { action: 'group.deleted', actor: { id: a.userId, email: a.email }, ip: requestIp(c.req.raw), target_type: 'group', target_id: id }),
      );
      return c.body(null, 204);
    },
  )
  .openapi(
    createRoute({
      method: 'get',
      path: '/{id}/members',
      summary: "A group's members (owner)",
      middleware: manage,
      request: { params: IdParams },
      responses: { 200: jsonResponse(z.array(GroupMember), 'Members'), ...errorResponses(400, 401, 403, 404, 503) },
    }),
    async (c) => c.json(await members(c.var.db, c.req.valid('param').id), 200),
  )
  .openapi(
    createRoute({
      method: 'put',
      path: '/{id}/members/{user_id}',
      summary: 'Add a user to a group (owner; idempotent)',
      middleware: manage,
      request: { params: MemberParams },
      responses: { 204: { description: 'A member' }, ...errorResponses(400, 401, 403, 404, 503) },
    }),
    async (c) => {
      const p = c.req.valid('param');
      const a = c.var.actor;
      await addMember(c.env, c.var.db, p.id, p.user_id, (tx) =>
        audit(tx, { action: 'group.member_added', actor: { id: a.userId, email: a.email }, ip: requestIp(c.req.raw), target_type: 'group', target_id: p.id, detail: { user_id: p.user_id } }),
      );
      return c.body(null, 204);
    },
  )
  .openapi(
    createRoute({
      method: 'delete',
      path: '/{id}/members/{user_id}',
      summary: 'Remove a user from a group (owner): what the group gave them ends at once (streams close with 4403)',
      middleware: manage,
      request: { params: MemberParams },
      responses: { 204: { description: 'Not a member' }, ...errorResponses(400, 401, 403, 404, 503) },
    }),
    async (c) => {
      const p = c.req.valid('param');
      const a = c.var.actor;
      await removeMember(c.env, c.var.db, p.id, p.user_id, (tx) =>
        audit(tx, { action: 'group.member_removed', actor: { id: a.userId, email: a.email }, ip: requestIp(c.req.raw), target_type: 'group', target_id: p.id, detail: { user_id: p.user_id } }),
      );
      return c.body(null, 204);
    },
  );

export default app;
