/**
 * Files in the model's input (docs/files.md): a user message's file parts become the AI SDK's parts when the prompt is
 * built: images as `image` parts, PDFs as `file` parts, text files as a text part that starts with the file's name.
 * The bytes come from R2 for the turn (`FileBytes`) and are never kept in the message cache.
 */
import type { ModelMessage } from 'ai';
import { FilePart } from '../../functions/core/shapes/files';
import { isImageType, isTextType } from '../../functions/core/shapes/files';
import type { Message } from '../../functions/core/chats';

/** The bytes of the files a prompt uses, by file id (missing: the file is gone). */
export type FileBytes = ReadonlyMap<string, Uint8Array>;

type UserParts = Exclude<Extract<ModelMessage, { role: 'user' }>['content'], string>;

/** The file parts of a message. */
export function fileParts(m: Pick<Message, 'content'>): FilePart[] {
  return m.content.flatMap((p) => {
    if (p.type !== 'file') return [];
    const f = FilePart.safeParse(p);
    return f.success ? [f.data] : [];
  });
}

/** A short note for a file where its content is not sent (summaries, estimates): `[image: a.png]`, `[file: b.pdf]`. */
export const fileNote = (f: FilePart): string => `[${isImageType(f.media_type) ? 'image' : 'file'}: ${f.name}]`;

/** A user message with files as the model's parts, in the message's order. */
export function userParts(m: Message, files: FileBytes): UserParts {
  const out: UserParts = [];
  for (const p of m.content) {
    if (p.type === 'text' && 'text' in p && typeof p.text === 'string') {
      if (p.text) out.push({ type: 'text', text: p.text });
      continue;
    }
    const f = FilePart.safeParse(p);
    if (!f.success) continue;
    const bytes = files.get(f.data.file_id);
    if (!bytes) out.push({ type: 'text', text: `${fileNote(f.data)} (no longer available)` });
    else if (isImageType(f.data.media_type)) out.push({ type: 'image', image: bytes, mediaType: f.data.media_type });
    else if (isTextType(f.data.media_type)) out.push({ type: 'text', text: `${f.data.name}:\n${new TextDecoder().decode(bytes)}` });
    else out.push({ type: 'file', data: bytes, mediaType: f.data.media_type, filename: f.data.name });
  }
  return out;
}

/** Tokens to count for a part sent as bytes, in estimates (the provider's own count replaces it after the turn). */
export const BINARY_PART_TOKENS = 1000;
