/**
 * /api/v2/shared/{token}: a share link's snapshot, public (no credential). Rate-limited per client address; cacheable
 * until the link expires (at most SHARED_MAX_AGE_S, so a revocation reaches caches within that); 404 (never cached)
 * for a token that is unknown, revoked or expired. Its files: /shared/{token}/files/{file_id}, only a file that a live
 * message of the snapshot uses, with the headers of GET /chats/files/{id} but the snapshot's cache lifetime.
 */
import { createRoute, z } from '@hono/zod-openapi';
import { errorResponses, jsonResponse, router } from '../lib/openapi';
import { clientOf, countOrRefuse } from '../lib/rate-limit';
import { ApiError, NOT_FOUND_MESSAGE } from '../core/errors';
import { SharedChat } from '../core/shapes/sharing';
import { sharedFile, sharedSnapshot } from '../services/sharing';
import { fileResponse } from '../lib/file-response';
import { UuidParam } from '../lib/openapi';

/** How long a response may be kept by a cache (and never past the link's expiry). */
export const SHARED_MAX_AGE_S = 60;

/** Seconds a cache may keep an answer: at most SHARED_MAX_AGE_S, and never past the link's expiry. */
function maxAge(expiresAt: Date | null): number {
  const left = expiresAt === null ? SHARED_MAX_AGE_S : Math.floor((expiresAt.getTime() - Date.now()) / 1000);
  return Math.max(0, Math.min(SHARED_MAX_AGE_S, left));
}

/** Any text: what is not a token of ours is simply unknown (404). */
const Token = z.string().max(256).openapi({ param: { name: 'token', in: 'path' } });
const TOKEN = /^[A-Za-z0-9]{43}$/;

const app = router().openapi(
  createRoute({
    method: 'get',
    path: '/{token}',
    summary: 'A shared chat, read-only, as it was when the link was made (no authentication)',
    security: [],
    request: { params: z.object({ token: Token }) },
    responses: { 200: jsonResponse(SharedChat, 'The snapshot'), ...errorResponses(400, 404, 429, 503) },
  }),
  async (c) => {
    await countOrRefuse(c.env, clientOf(c.req.raw), 'shared_link');
    const { token } = c.req.valid('param');
    const snap = TOKEN.test(token) ? await sharedSnapshot(c.var.db, token) : null;
    if (!snap) throw new ApiError(404, NOT_FOUND_MESSAGE, undefined, undefined, { 'cache-control': 'no-store' });
    c.header('cache-control', `public, max-age=${maxAge(snap.expiresAt)}`);
    return c.json(snap.body, 200);
  },
).openapi(
  createRoute({
    method: 'get',
    path: '/{token}/files/{file_id}',
    summary: "A file used by a shared chat's snapshot (no authentication)",
    security: [],
    request: { params: z.object({ token: Token, file_id: UuidParam('file_id') }) },
    responses: {
      200: { description: "The file's bytes, with its media type", content: { 'application/octet-stream': { schema: z.string().openapi({ type: 'string', format: 'binary' }) } } },
      ...errorResponses(400, 404, 429, 503),
    },
  }),
  async (c) => {
    await countOrRefuse(c.env, clientOf(c.req.raw), 'shared_link');
    const { token, file_id } = c.req.valid('param');
    const found = TOKEN.test(token) ? await sharedFile(c.var.db, token, file_id) : null;
    if (!found) throw new ApiError(404, NOT_FOUND_MESSAGE, undefined, undefined, { 'cache-control': 'no-store' });
    return await fileResponse(c.env.FILES, found.file, `public, max-age=${maxAge(found.expiresAt)}`);
  },
);

export default app;
