/**
 * The conversation tools' shapes (`POST /chats/{id}/fork`, `/regenerate`, `GET /chats/{id}/export`,
 * `POST /chats/import`, `GET|PUT /chats/config/title-model`). The JSON export is a documented, versioned format:
 * the same schema validates an import, so what we export we take back, part for part.
 */
import { z } from '@hono/zod-openapi';
import { ForkedFrom, Part, Role, Usage } from './chat';

export const EXPORT_VERSION = 1;
/** A chat imported at once holds at most this many messages (the request body is at most 1 MiB anyway). */
export const MAX_IMPORT_MESSAGES = 5_000;
const MAX_PARTS = 100;
const MAX_TEXT_CHARS = 200_000;

const KNOWN_PART_TYPES: readonly string[] = ['text', 'reasoning', 'tool_call', 'tool_result'];

/**
 * A part in an export: a known part, checked as strictly as the server writes it, or a kind added later (a file
 * reference, issue 26), kept as it is. A known kind with bad fields is an error, never a kind "added later".
 */
export const ExportedPart = z.union([
  Part,
  z.looseObject({
    type: z.string().min(1).refine((t) => !KNOWN_PART_TYPES.includes(t), { message: 'is a known part type whose fields are wrong' }),
  }),
]);

export const ExportedMessage = z
  .object({
    role: Role,
    content: z
      .array(ExportedPart)
      .max(MAX_PARTS, { message: `must have at most ${MAX_PARTS} parts` })
      .refine((parts) => parts.reduce((n, p) => n + ('text' in p && typeof p.text === 'string' ? p.text.length : 0), 0) <= MAX_TEXT_CHARS, {
        message: `must hold at most ${MAX_TEXT_CHARS} characters of text`,
      }),
    created_at: z.iso.datetime({ offset: true }),
    /** Informational (another deployment's ids): not imported. */
    model_config_id: z.uuid().nullable().optional(),
    /** Informational: not imported (nothing was spent here). */
    usage: Usage.optional(),
  })
  .openapi('ExportedMessage');

export const ChatExport = z
  .object({
    version: z.literal(EXPORT_VERSION).openapi({ description: 'The export format version (1)' }),
    exported_at: z.iso.datetime({ offset: true }),
    chat: z.object({
      id: z.uuid(),
      title: z.string().trim().max(256).refine((t) => !t.includes('\u0000'), { message: 'must not contain NUL' }),
      labels: z.record(z.string().min(1).max(64), z.string().max(256)).refine((l) => Object.keys(l).length <= 50, { message: 'at most 50 labels' }),
      created_at: z.iso.datetime({ offset: true }),
      forked_from: z.union([ForkedFrom, z.null()]).optional(),
    }),
    messages: z
      .array(ExportedMessage)
      .min(1, { message: 'must hold at least one message' })
      .max(MAX_IMPORT_MESSAGES, { message: `must hold at most ${MAX_IMPORT_MESSAGES} messages` }),
  })
  .openapi('ChatExport', { description: 'A chat as `GET /chats/{id}/export?format=json` writes it and `POST /chats/import` takes it' });
export type ChatExport = z.infer<typeof ChatExport>;

export const ForkRequest = z.object({ message_id: z.number().int().positive() }).strict().openapi('ForkRequest');
export const RegenerateRequest = z.object({ model_config_id: z.uuid().optional() }).strict().openapi('RegenerateRequest');
export const TitleModel = z
  .object({ title_model_config_id: z.uuid().nullable() })
  .strict()
  .openapi('TitleModel', { description: "The model config that writes chats' titles; null: each chat's own model" });
