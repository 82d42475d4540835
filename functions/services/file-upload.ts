/**
 * A file upload (POST /chats/files): the row first (its bytes reserved against the owner's quota in the same
 * statement), then the bytes streamed to R2 while they are counted (413 at the first byte past 10 MiB), hashed and,
 * for text types, checked as UTF-8; the row is finalized once R2 has them. Any failure removes the row (and the
 * object). The type is checked against the first bytes before anything is stored (file-type's signatures).
 */
import { fileTypeFromBuffer } from 'file-type/core';
import { abandonChatFile, finalizeChatFile, reserveChatFile } from '../../sql/generated/files.queries';
import type { Db } from '../core/db';
import { ApiError } from '../core/errors';
import { log } from '../core/log';
import { ChatFile, FILE_TYPES, isTextType, MAX_FILE_BYTES, MAX_FILE_NAME } from '../core/shapes/files';

/** file-type needs at most this many bytes to recognise the types we take. */
const SNIFF_BYTES = 4100;
const MIB = 1024 * 1024;

export const tooLarge = () => new ApiError(413, `The file is larger than 10 MiB (${MAX_FILE_BYTES} bytes).`);
const unsupported = (type: string) =>
  new ApiError(415, `Files of type "${type}" are not accepted. Accepted types: ${FILE_TYPES.join(', ')}.`);
const mismatch = (type: string, why: string) => new ApiError(415, `The file's bytes are not ${type}: ${why}.`);
const quotaFull = (quota: number) =>
  new ApiError(413, `Your files would take more than your storage quota (${Math.round((quota / MIB) * 10) / 10} MiB). Files no chat uses are removed after 24 hours.`);

/** Control characters (C0, DEL, C1) and the bidirectional overrides that can disguise an extension. */
const hidden = (cp: number): boolean =>
  cp < 0x20 || (cp >= 0x7f && cp <= 0x9f) || cp === 0x200e || cp === 0x200f || (cp >= 0x202a && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069);

/** A file name safe to store and send back: its last path segment, no control characters, at most 255 characters. */
export function sanitizeName(raw: string): string {
  const base = raw.split(/[/\\]/).pop() ?? '';
  const chars = Array.from(base).filter((ch) => !hidden(ch.codePointAt(0) ?? 0));
  const clean = chars.join('').replace(/\s+/g, ' ').trim();
  if (clean === '.' || clean === '..') return '';
  const points = Array.from(clean);
  if (points.length <= MAX_FILE_NAME) return clean;
  const dot = clean.lastIndexOf('.');
  const ext = dot > 0 && clean.length - dot <= 16 ? Array.from(clean.slice(dot)) : [];
  return [...points.slice(0, MAX_FILE_NAME - ext.length), ...ext].join('');
}

/** The media type of a Content-Type header, lower-cased, without parameters. */
export const mediaTypeOf = (header: string | undefined): string => (header ?? '').split(';')[0]?.trim().toLowerCase() ?? '';

export interface UploadSource {
  body: ReadableStream<Uint8Array>;
  /** The exact byte count when known (Content-Length, or a form part's size). */
  length: number | null;
  name: string;
  mediaType: string;
}

/** Checks the claimed type against the first bytes: file-type's signature for images and PDF, none for text. */
async function checkSignature(head: Uint8Array, claimed: string): Promise<void> {
  const found = await fileTypeFromBuffer(head);
  if (isTextType(claimed)) {
    if (found) throw mismatch(claimed, `they look like ${found.mime}`);
    return;
  }
  if (!found) throw mismatch(claimed, 'their signature is not recognised');
  if (found.mime !== claimed) throw mismatch(claimed, `they look like ${found.mime}`);
}

/** Reads until `want` bytes (or the end): the chunks read, and whether the stream ended. */
async function peek(reader: ReadableStreamDefaultReader<Uint8Array>, want: number): Promise<{ chunks: Uint8Array[]; done: boolean }> {
  const chunks: Uint8Array[] = [];
  let n = 0;
  while (n < want) {
    const r = await reader.read();
    if (r.done) return { chunks, done: true };
    chunks.push(r.value);
    n += r.value.byteLength;
    if (n > MAX_FILE_BYTES) throw tooLarge();
  }
  return { chunks, done: false };
}

function concat(chunks: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.byteLength, 0));
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.byteLength;
  }
  return out;
}

const hex = (b: ArrayBuffer) => [...new Uint8Array(b)].map((x) => x.toString(16).padStart(2, '0')).join('');

/** Stores one upload; answers the `file`. */
export async function uploadFile(db: Db, bucket: R2Bucket, ownerId: string, quota: number, src: UploadSource): Promise<ChatFile> {
  if (!(FILE_TYPES as readonly string[]).includes(src.mediaType)) throw unsupported(src.mediaType || '(none)');
  if (src.length !== null && src.length > MAX_FILE_BYTES) throw tooLarge();
  const reader = src.body.getReader();
  const cancel = () => reader.cancel().catch(() => undefined);
  let head: { chunks: Uint8Array[]; done: boolean };
  try {
    head = await peek(reader, SNIFF_BYTES);
    await checkSignature(concat(head.chunks).subarray(0, SNIFF_BYTES), src.mediaType);
  } catch (e) {
    await cancel();
    throw e;
  }
  const id = crypto.randomUUID();
  const key = `files/${ownerId}/${id}`;
  const reserved = src.length ?? MAX_FILE_BYTES;
  const [row] = await reserveChatFile.run({ id, owner_id: ownerId, name: src.name, media_type: src.mediaType, size: reserved, quota, r2_key: key }, db);
  if (!row) {
    await cancel();
    throw quotaFull(quota);
  }
  let stored = false;
  const { stream, result, error } = checked(head, reader, src.mediaType);
  try {
    if (src.length === null) {
      // No length announced: R2 needs one, so the (bounded, checked) bytes are gathered first.
      const all = new Uint8Array(await new Response(stream).arrayBuffer());
      await bucket.put(key, all, { httpMetadata: { contentType: src.mediaType } });
    } else {
      const fixed = new FixedLengthStream(src.length);
      const piping = stream.pipeTo(fixed.writable);
      await Promise.all([bucket.put(key, fixed.readable, { httpMetadata: { contentType: src.mediaType } }), piping]);
    }
    stored = true;
    const { size, sha256 } = await result;
    if (src.length !== null && size !== src.length) throw new ApiError(400, 'The upload ended before its announced length.');
    const [done] = await finalizeChatFile.run({ id, size, sha256, reserved }, db);
    if (!done) throw new Error('the upload row vanished');
    return ChatFile.parse({ ...done, size: Number(done.size), created_at: done.created_at.toISOString() });
  } catch (e) {
    await cancel();
    if (stored) await bucket.delete(key).catch(() => undefined);
    await abandonChatFile.run({ id }, db).catch((err: unknown) => {
      log('warn', 'could not remove a failed upload (the cron will)', { file_id: id, error: String(err) });
    });
    const cause = error();
    throw cause instanceof ApiError ? cause : e instanceof ApiError ? e : failure(e);
  }
}

/** Failures of the stream that are the client's (cut short, wrong length) rather than ours. */
function failure(e: unknown): unknown {
  const text = String(e);
  if (/length|disconnect|cancel|abort|premature/i.test(text)) return new ApiError(400, 'The upload ended before its announced length.');
  return e;
}

/**
 * The upload's bytes after the head: counted (413 past the limit), hashed, and checked as UTF-8 for text types.
 * `result` settles once the stream is read to its end.
 */
function checked(head: { chunks: Uint8Array[]; done: boolean }, reader: ReadableStreamDefaultReader<Uint8Array>, mediaType: string) {
  const digest = new crypto.DigestStream('SHA-256');
  const hashing = digest.getWriter();
  const utf8 = isTextType(mediaType) ? new TextDecoder('utf-8', { fatal: true, ignoreBOM: false }) : null;
  let size = 0;
  let failed: unknown = null;
  let pending = [...head.chunks];
  let ended = head.done;
  let resolve: (r: { size: number; sha256: string }) => void = () => undefined;
  let reject: (e: unknown) => void = () => undefined;
  const result = new Promise<{ size: number; sha256: string }>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  result.catch(() => undefined);
  const take = async (chunk: Uint8Array) => {
    size += chunk.byteLength;
    if (size > MAX_FILE_BYTES) throw tooLarge();
    if (utf8) {
      try {
        utf8.decode(chunk, { stream: true });
      } catch {
        throw mismatch(mediaType, 'they are not valid UTF-8');
      }
    }
    await hashing.write(chunk);
  };
  const stream = new ReadableStream<Uint8Array>({
    pull: async (controller) => {
      try {
        let chunk = pending.shift();
        if (!chunk && !ended) {
          const r = await reader.read();
          if (r.done) ended = true;
          else chunk = r.value;
        }
        if (chunk) {
          await take(chunk);
          controller.enqueue(chunk);
          return;
        }
        if (utf8) {
          try {
            utf8.decode();
          } catch {
            throw mismatch(mediaType, 'they are not valid UTF-8');
          }
        }
        await hashing.close();
        resolve({ size, sha256: hex(await digest.digest) });
        controller.close();
      } catch (e) {
        pending = [];
        failed = e;
        reject(e);
        controller.error(e);
      }
    },
    cancel: async () => {
      await reader.cancel().catch(() => undefined);
    },
  });
  return { stream, result, error: () => failed };
}
