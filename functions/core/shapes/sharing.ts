/** Groups, chat ACLs and share links: the API's shapes, each written once (see shapes/chat.ts). */
import { z } from '@hono/zod-openapi';
import { Message } from './chat';

export const Group = z
  .object({ id: z.uuid(), name: z.string(), member_count: z.number().int(), created_at: z.iso.datetime() })
  .openapi('Group');
export type Group = z.infer<typeof Group>;

export const GroupMember = z.object({ user_id: z.uuid(), username: z.string(), email: z.string() }).openapi('GroupMember');
export type GroupMember = z.infer<typeof GroupMember>;

/** The one role a grant gives. */
export const AclRole = z.enum(['viewer']).openapi('AclRole');

export const ChatAcl = z
  .object({
    users: z.array(z.object({ user_id: z.uuid(), username: z.string(), role: AclRole })),
    groups: z.array(z.object({ group_id: z.uuid(), name: z.string(), role: AclRole })),
  })
  .openapi('ChatAcl');
export type ChatAcl = z.infer<typeof ChatAcl>;

/** `PATCH /chats/{id}/acl`: per id, `viewer` grants, null revokes. */
const Changes = z
  .record(z.uuid({ message: 'keys must be UUIDs' }), z.union([AclRole, z.null()]))
  .refine((r) => Object.keys(r).length <= 500, { message: 'at most 500 changes' });
export const ChatAclPatch = z.object({ users: Changes.optional(), groups: Changes.optional() }).strict().openapi('ChatAclPatch');
export type ChatAclPatch = z.infer<typeof ChatAclPatch>;

export const ShareLink = z.object({ id: z.uuid(), expires_at: z.iso.datetime().nullable(), created_at: z.iso.datetime() }).openapi('ShareLink');
export type ShareLink = z.infer<typeof ShareLink>;

export const NewShareLink = ShareLink.extend({
  url: z.string().openapi({ description: 'The web page of the link: `/s/{token}` on this deployment' }),
  token: z.string().openapi({ description: 'Shown once; only its hash is stored' }),
}).openapi('NewShareLink');
export type NewShareLink = z.infer<typeof NewShareLink>;

/** `GET /shared/{token}`: the snapshot; nothing about the owner but the username. */
export const SharedChat = z
  .object({
    chat: z.object({ title: z.string(), created_at: z.iso.datetime(), owner_username: z.string() }),
    messages: z.array(Message),
  })
  .openapi('SharedChat');
export type SharedChat = z.infer<typeof SharedChat>;
