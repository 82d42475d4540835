/** A stored file's bytes as an HTTP answer: the headers every file download carries (GET /chats/files/{id}, a link's files). */
import { log } from '../core/log';
import { notFound } from '../core/errors';
import { isImageType, type ChatFile } from '../core/shapes/files';

/** `Content-Disposition` with an ASCII fallback and the UTF-8 name (RFC 6266 / 5987). */
function disposition(kind: 'inline' | 'attachment', name: string): string {
  const ascii = name.replace(/[^\x20-\x7e]/g, '_').replace(/["\\]/g, '_');
  return `${kind}; filename="${ascii}"; filename*=UTF-8''${encodeURIComponent(name).replace(/['()*]/g, (ch) => `%${ch.charCodeAt(0).toString(16).toUpperCase()}`)}`;
}

/** The file's bytes from R2 with its media type, nosniff, disposition, a sandboxing CSP and its hash as ETag; 404 when R2 has no bytes. */
export async function fileResponse(bucket: R2Bucket, file: ChatFile & { key: string }, cacheControl: string): Promise<Response> {
  const object = await bucket.get(file.key);
  if (!object) {
    log('error', 'a file row has no bytes', { file_id: file.id });
    throw notFound();
  }
  return new Response(object.body, {
    status: 200,
    headers: {
      'content-type': file.media_type,
      'content-length': String(file.size),
      'x-content-type-options': 'nosniff',
      'content-disposition': disposition(isImageType(file.media_type) ? 'inline' : 'attachment', file.name),
      'cache-control': cacheControl,
      'content-security-policy': "default-src 'none'; sandbox",
      etag: `"${file.sha256}"`,
    },
  });
}
