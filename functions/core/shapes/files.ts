/**
 * Chat files (docs/files.md): the stored file, and the part that attaches one to a user message. Accepted media types
 * and limits live here, next to the shapes, so the Worker (upload, validation) and the chat object (prompt) agree.
 */
import { z } from '@hono/zod-openapi';

export const MAX_FILE_BYTES = 10 * 1024 * 1024;
export const MAX_FILES_PER_MESSAGE = 10;
export const MAX_FILE_NAME = 255;

export const IMAGE_TYPES = ['image/png', 'image/jpeg', 'image/gif', 'image/webp'] as const;
export const TEXT_TYPES = ['text/plain', 'text/markdown', 'text/csv', 'application/json'] as const;
export const FILE_TYPES = [...IMAGE_TYPES, 'application/pdf', ...TEXT_TYPES] as const;
export type FileMediaType = (typeof FILE_TYPES)[number];

export const isImageType = (t: string): boolean => (IMAGE_TYPES as readonly string[]).includes(t);
export const isTextType = (t: string): boolean => (TEXT_TYPES as readonly string[]).includes(t);

/** `file` */
export const ChatFile = z
  .object({
    id: z.uuid(),
    name: z.string(),
    media_type: z.string(),
    size: z.number().int(),
    sha256: z.string().openapi({ description: 'Hex SHA-256 of the bytes' }),
    created_at: z.iso.datetime(),
  })
  .openapi('ChatFile');
export type ChatFile = z.infer<typeof ChatFile>;

/** A file part as a user sends it: which file to attach. */
export const FileInputPart = z
  .object({ type: z.literal('file'), file_id: z.uuid() })
  .strict()
  .openapi('FileInputPart', { description: 'Attaches an uploaded file (yours) to the message' });
export type FileInputPart = z.infer<typeof FileInputPart>;

/** A file part as stored and streamed: the file, with its name, type and size. */
export const FilePart = z
  .object({
    type: z.literal('file'),
    file_id: z.uuid(),
    name: z.string(),
    media_type: z.string(),
    size: z.number().int(),
  })
  .strict()
  .openapi('FilePart', { description: 'A file attached to a user message; its bytes: GET /chats/files/{file_id}' });
export type FilePart = z.infer<typeof FilePart>;
