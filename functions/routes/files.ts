/**
 * Chat files (docs/files.md): upload, download, and the files a chat's messages use. Mounted before /chats/{id}, so
 * `files` is never taken for a chat id.
 */
import { createRoute, z } from '@hono/zod-openapi';
import type { Context } from 'hono';
import { authorize, ownedChat, type AuthedEnv } from '../authz';
import { badRequest, notFound } from '../core/errors';
import { settings } from '../core/settings';
import { ChatFile, MAX_FILE_BYTES } from '../core/shapes/files';
import { fileResponse } from '../lib/file-response';
import { errorResponses, IdParams, jsonResponse, router } from '../lib/openapi';
import { mediaTypeOf, sanitizeName, tooLarge, uploadFile, type UploadSource } from '../services/file-upload';
import { chatFiles, readableFile } from '../services/files';

const self = authorize('self');
/** A multipart body's framing around its one file, at most. */
const FORM_OVERHEAD = 64 * 1024;

const Binary = z.string().openapi({ type: 'string', format: 'binary' });

/** The upload's bytes, name and type: the raw body, or the `file` field of a multipart form. */
async function sourceOf(c: Context<AuthedEnv>, queryName: string | undefined): Promise<UploadSource> {
  const raw = c.req.raw;
  const declared = c.req.header('content-length');
  const length = declared !== undefined && /^\d+$/.test(declared) ? Number(declared) : null;
  const type = mediaTypeOf(c.req.header('content-type'));
  if (type !== 'multipart/form-data') {
    if (length !== null && length > MAX_FILE_BYTES) throw tooLarge();
    const name = sanitizeName(queryName ?? '');
    if (!name) throw badRequest('Validation failed.', [{ field: 'name', detail: 'a file name is required (?name=)' }]);
    if (!raw.body) throw badRequest('The request has no body (the file\'s bytes).');
    return { body: raw.body as ReadableStream<Uint8Array>, length, name, mediaType: type };
  }
  if (length !== null && length > MAX_FILE_BYTES + FORM_OVERHEAD) throw tooLarge();
  let form: FormData;
  try {
    form = await c.req.formData();
  } catch {
    throw badRequest('The multipart body could not be read.');
  }
  const file = form.get('file');
  if (!(file instanceof File)) throw badRequest('Validation failed.', [{ field: 'file', detail: 'a form field "file" with the file is required' }]);
  if (file.size > MAX_FILE_BYTES) throw tooLarge();
  const name = sanitizeName(queryName ?? file.name);
  if (!name) throw badRequest('Validation failed.', [{ field: 'name', detail: 'a file name is required' }]);
  return { body: file.stream() as ReadableStream<Uint8Array>, length: file.size, name, mediaType: mediaTypeOf(file.type) };
}

const app = router()
  .openapi(
    createRoute({
      method: 'post',
      path: '/files',
      summary: "Upload a file: the body is its bytes and Content-Type its media type (or multipart/form-data, field 'file')",
      middleware: self,
      request: {
        query: z.object({ name: z.string().max(4096).optional().openapi({ description: "The file's name (multipart: defaults to the part's)" }) }),
        body: {
          required: true,
          description:
            'image/png, image/jpeg, image/gif, image/webp, application/pdf, text/plain, text/markdown, text/csv or application/json; at most 10 MiB',
          content: { 'application/octet-stream': { schema: Binary } },
        },
      },
      responses: {
        201: jsonResponse(ChatFile, 'The file'),
        ...errorResponses(400, 401, 413, 503),
        415: { description: 'An unsupported type, or bytes that are not the type claimed', content: { 'application/json': { schema: z.object({ message: z.string() }) } } },
      },
    }),
    async (c) => {
      const src = await sourceOf(c, c.req.valid('query').name);
      const file = await uploadFile(c.var.db, c.env.FILES, c.var.actor.userId, settings(c.env).FILE_QUOTA_BYTES, src);
      return c.json(file, 201);
    },
  )
  .openapi(
    createRoute({
      method: 'get',
      path: '/files/{id}',
      summary: "A file's bytes: its uploader's, or used by a chat you can read",
      middleware: self,
      request: { params: IdParams },
      responses: {
        200: { description: "The file's bytes, with its media type", content: { 'application/octet-stream': { schema: Binary } } },
        ...errorResponses(400, 401, 404, 503),
      },
    }),
    async (c) => {
      const file = await readableFile(c.var.db, c.var.actor.userId, c.req.valid('param').id);
      if (!file) throw notFound();
      return await fileResponse(c.env.FILES, file, 'private, max-age=3600');
    },
  )
  .openapi(
    createRoute({
      method: 'get',
      path: '/{id}/files',
      summary: "The files used by the chat's messages",
      middleware: self,
      request: { params: IdParams },
      responses: { 200: jsonResponse(z.object({ files: z.array(ChatFile) }), 'Files'), ...errorResponses(400, 401, 404, 503) },
    }),
    async (c) => {
      // The chat's object decides who may read the chat (the guard's `read` rule).
      const chat = await ownedChat(c.env, c.var.actor, c.req.valid('param').id);
      return c.json({ files: await chatFiles(c.var.db, chat.id) }, 200);
    },
  );

export default app;
