/**
 * Every request body passes here before any route reads it: at most MAX_BODY_BYTES (413 otherwise, whether or not
 * a Content-Length was sent: the stream is counted as it is read), and a JSON body holds only what Postgres can
 * store and our code can walk (no NUL characters or unpaired surrogates in strings or keys, no nesting deeper than
 * MAX_JSON_DEPTH). Postgres refuses those in text and jsonb, so they would otherwise surface as 500s.
 */
import { createMiddleware } from 'hono/factory';
import type { AppEnv } from '../env';
import { ApiError, badRequest } from '../core/errors';

export const MAX_BODY_BYTES = 1024 * 1024;
/** Nothing of ours nests this deep (agent context bodies stop at 64 levels); deeper JSON is refused. */
export const MAX_JSON_DEPTH = 128;

const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;
/** No NUL (Postgres text and jsonb refuse it) and no unpaired surrogate (not representable in UTF-8). */
export const isCleanText = (s: string): boolean => !s.includes('\u0000') && !LONE_SURROGATE.test(s);
export const UNCLEAN_TEXT = 'must not contain NUL characters or unpaired surrogates';

const tooLarge = () => new ApiError(413, `The request body is larger than 1 MiB (${MAX_BODY_BYTES} bytes).`);

/** The whole body, or 413 as soon as it grows past the limit (the rest is not read). */
async function readAtMost(body: ReadableStream<unknown>, max: number): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let size = 0;
  const reader = body.getReader();
  for (;;) {
    const next = await reader.read();
    if (next.done) break;
    // A request body's stream yields bytes; anything else is not a body we read.
    if (!(next.value instanceof Uint8Array)) throw new ApiError(400, 'The request body could not be read.');
    size += next.value.byteLength;
    if (size > max) {
      await reader.cancel().catch(() => undefined);
      throw tooLarge();
    }
    chunks.push(next.value);
  }
  const out = new Uint8Array(size);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.byteLength;
  }
  return out;
}

/** The first problem in a parsed JSON value, as a validation, or null. Iterative: depth costs no stack. */
export function jsonProblem(value: unknown): { field: string; detail: string } | null {
  const stack: { v: unknown; path: string[] }[] = [{ v: value, path: [] }];
  for (let item = stack.pop(); item !== undefined; item = stack.pop()) {
    const { v, path } = item;
    const field = path.length ? path.join('.') : '(body)';
    if (typeof v === 'string') {
      if (!isCleanText(v)) return { field, detail: UNCLEAN_TEXT };
    } else if (typeof v === 'object' && v !== null) {
      if (path.length >= MAX_JSON_DEPTH) return { field, detail: `must not nest deeper than ${MAX_JSON_DEPTH} levels` };
      const entries: [string, unknown][] = Array.isArray(v) ? v.map((x, i) => [String(i), x]) : Object.entries(v);
      for (const [k, x] of entries) {
        if (!isCleanText(k)) return { field: [...path, '(key)'].join('.'), detail: UNCLEAN_TEXT };
        stack.push({ v: x, path: [...path, k] });
      }
    }
  }
  return null;
}

/** The file upload route (functions/routes/files.ts). */
export const UPLOAD_PATH = '/api/v2/chats/files';

const JSON_TYPE = /^application\/([\w.-]+\+)?json\s*(;|$)/i;

/** The middleware (app-wide, before routes and authentication). */
export const bodyGuard = createMiddleware<AppEnv>(async (c, next) => {
  const raw = c.req.raw;
  // A file upload is its own bytes (up to 10 MiB, any type): the upload route counts and checks them as they stream.
  if (raw.body === null || (raw.method === 'POST' && c.req.path === UPLOAD_PATH)) {
    await next();
    return;
  }
  const declared = c.req.header('content-length');
  if (declared !== undefined && Number(declared) > MAX_BODY_BYTES) throw tooLarge();
  if (declared === undefined) {
    // No length announced (a chunked body): counted as it is read, and the routes read this copy.
    const bytes = await readAtMost(raw.body, MAX_BODY_BYTES);
    c.req.raw = new Request(raw, { body: bytes });
  }
  if (JSON_TYPE.test(c.req.header('content-type') ?? '')) {
    // Parsed once: the route's validator gets this parse from the request's body cache.
    let parsed: unknown;
    let ok = true;
    try {
      parsed = await c.req.json();
    } catch {
      ok = false; // empty or not JSON: the route's validator answers
    }
    const problem = ok ? jsonProblem(parsed) : null;
    if (problem) throw badRequest('Validation failed.', [problem]);
  }
  await next();
});
