/**
 * What a debug run keeps of a model call's request and response: every credential redacted, file bytes replaced by
 * their metadata, and bounded in size (it rides in the write that stores the answer, and in the outbox).
 */

export const REDACTED = '[redacted]';
/** A string longer than this is cut (with a note of how much). */
export const MAX_STRING = 8_000;
/** A run's JSON longer than this loses prompt messages from its oldest (after the first), then is cut to a note. */
export const MAX_RUN_BYTES = 256_000;

/** Keys whose values are credentials, wherever they appear (headers, options, tool inputs). */
const SECRET_KEY = /^(authorization|proxy-authorization|x-api-key|api[-_]?key|apikey|x-goog-api-key|cookie|set-cookie|password|secret|token|access[-_]?token|refresh[-_]?token)$/i;
const BEARER = /\b(Bearer|Basic)\s+(?!\[redacted\])[A-Za-z0-9._~+/=-]+/g;
/** `api_key: x`, `"token": "x"`, `password=x` inside text (a pasted config, an echoed header). */
const KEY_VALUE = /((?:api[-_]?key|apikey|access[-_]?token|token|password|secret)["']?\s*[:=]\s*["']?)(?!\[redacted\])[^"'\s,}&]+/gi;
/** File parts: their bytes become `{bytes, media_type}`. */
const BYTES_KEYS = new Set(['data', 'image', 'bytes']);

function scrubString(s: string, secrets: readonly string[]): string {
  let out = s;
  for (const secret of secrets) if (secret.length >= 4) out = out.split(secret).join(REDACTED);
  out = out.replace(BEARER, `$1 ${REDACTED}`).replace(KEY_VALUE, `$1${REDACTED}`);
  return out.length > MAX_STRING ? `${out.slice(0, MAX_STRING)}…[cut ${out.length - MAX_STRING} characters]` : out;
}

function isFilePart(o: Record<string, unknown>): boolean {
  return o.type === 'file' || o.type === 'image';
}

/**
 * A JSON copy of `value` with every credential gone: values of credential keys, known secrets (`secrets`: the
 * provider key, MCP header values) anywhere in a string, bearer tokens; binary data as its size.
 */
export function redact(value: unknown, secrets: readonly string[]): unknown {
  if (typeof value === 'string') return scrubString(value, secrets);
  if (value === null || typeof value === 'number' || typeof value === 'boolean') return value;
  if (value instanceof Uint8Array) return { bytes: value.byteLength };
  if (value instanceof ArrayBuffer) return { bytes: value.byteLength };
  if (value instanceof URL) return scrubString(value.toString(), secrets);
  if (Array.isArray(value)) return value.map((v) => redact(v, secrets));
  if (typeof value === 'object') {
    const o = value as Record<string, unknown>;
    const out: Record<string, unknown> = {};
    const file = isFilePart(o);
    for (const [k, v] of Object.entries(o)) {
      if (SECRET_KEY.test(k)) out[k] = REDACTED;
      else if (file && BYTES_KEYS.has(k)) out[k] = { bytes: byteSize(v), media_type: o.mediaType ?? o.media_type ?? null };
      else out[k] = redact(v, secrets);
    }
    return out;
  }
  // undefined, functions, symbols: not JSON.
  return null;
}

function byteSize(v: unknown): number {
  if (v instanceof Uint8Array) return v.byteLength;
  if (v instanceof ArrayBuffer) return v.byteLength;
  // base64 text: 3 bytes per 4 characters.
  if (typeof v === 'string') return Math.floor((v.length * 3) / 4);
  return 0;
}

const size = (v: unknown): number => new TextEncoder().encode(JSON.stringify(v)).byteLength;

/**
 * Bounds a run to MAX_RUN_BYTES: prompt messages go from the oldest (the first, usually the system text, stays), with
 * `dropped_messages` saying how many; if still too large, the request becomes a note of its size.
 */
export function boundedRun(run: unknown): unknown {
  if (size(run) <= MAX_RUN_BYTES || typeof run !== 'object' || run === null) return run;
  const r = { ...(run as Record<string, unknown>) };
  const request = { ...(r.request as Record<string, unknown>) };
  const prompt = Array.isArray(request.prompt) ? [...(request.prompt as unknown[])] : [];
  let dropped = 0;
  while (prompt.length > 2 && size({ ...r, request: { ...request, prompt } }) > MAX_RUN_BYTES) {
    prompt.splice(1, 1);
    dropped += 1;
  }
  request.prompt = prompt;
  request.dropped_messages = dropped;
  r.request = request;
  if (size(r) > MAX_RUN_BYTES) r.request = { cut: true, bytes: size(request) };
  if (size(r) > MAX_RUN_BYTES) r.response = { cut: true, bytes: size(r.response) };
  return r;
}
