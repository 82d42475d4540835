/** Chat files on the Worker's side: the file parts of a posted message, resolved; reading a file or a chat's files. */
import { getChatFiles, getOwnChatFiles, getReadableChatFile } from '../../sql/generated/files.queries';
import type { UserInputPart } from '../core/chats';
import type { Db } from '../core/db';
import { badRequest } from '../core/errors';
import type { Part } from '../core/shapes/chat';
import { ChatFile } from '../core/shapes/files';

export const toFile = (r: { id: string; name: string; media_type: string; size: string; sha256: string; created_at: Date }): ChatFile =>
  ChatFile.parse({ ...r, size: Number(r.size), created_at: r.created_at.toISOString() });

/**
 * A message's parts as stored: each `{type:"file", file_id}` gets the file's name, type and size. A file that does
 * not exist or is not the poster's → 400 with validations. Content without file parts costs no statement.
 */
export async function resolveFileParts(db: Db, ownerId: string, parts: readonly UserInputPart[]): Promise<Part[]> {
  const ids = [...new Set(parts.flatMap((p) => (p.type === 'file' ? [p.file_id.toLowerCase()] : [])))];
  if (ids.length === 0) return parts.flatMap((p): Part[] => (p.type === 'text' ? [p] : []));
  const rows = await getOwnChatFiles.run({ ids, owner_id: ownerId }, db);
  const known = new Map(rows.map((r) => [r.id, r]));
  const missing = parts.flatMap((p, i) =>
    p.type === 'file' && !known.has(p.file_id.toLowerCase()) ? [{ field: `content.${i}.file_id`, detail: 'no file of yours has this id' }] : [],
  );
  if (missing.length > 0) throw badRequest('Unknown file.', missing);
  return parts.map((p): Part => {
    if (p.type !== 'file') return p;
    const f = known.get(p.file_id.toLowerCase());
    if (!f) throw new Error('unreachable: checked above');
    return { type: 'file', file_id: f.id, name: f.name, media_type: f.media_type, size: Number(f.size) };
  });
}

/** A file the user may read (see the query), with its R2 key; null otherwise. */
export async function readableFile(db: Db, userId: string, id: string): Promise<(ChatFile & { key: string }) | null> {
  const [row] = await getReadableChatFile.run({ id, user_id: userId }, db);
  return row ? { ...toFile(row), key: row.r2_key } : null;
}

/** The files a chat's live messages use (the caller checked the chat is readable). */
export async function chatFiles(db: Db, chatId: string): Promise<ChatFile[]> {
  return (await getChatFiles.run({ chat_id: chatId }, db)).map(toFile);
}
