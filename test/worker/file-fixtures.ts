/** Sample files for the file suites (each a real signature file-type recognises), and a raw upload helper. */
import { exports } from 'cloudflare:workers';

const b64 = (s: string) => Uint8Array.from(atob(s), (c) => c.charCodeAt(0));
const ascii = (s: string) => new TextEncoder().encode(s);
const join = (...parts: Uint8Array[]) => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
};

/** A 1x1 PNG. */
export const PNG = b64('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==');
export const JPEG = join(new Uint8Array([0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10]), ascii('JFIF\u0000'), new Uint8Array(64), new Uint8Array([0xff, 0xd9]));
export const GIF = join(ascii('GIF89a'), new Uint8Array([1, 0, 1, 0, 0, 0, 0, 0x2c, 0, 0, 0, 0, 1, 0, 1, 0, 0, 2, 2, 0x44, 1, 0, 0x3b]));
export const WEBP = join(ascii('RIFF'), new Uint8Array([26, 0, 0, 0]), ascii('WEBPVP8 '), new Uint8Array(18));
export const PDF = ascii('%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n');
export const TEXT = ascii('first line\nsecond line, ünïcödé\n');

export interface Upload {
  status: number;
  body: unknown;
  headers: Headers;
}

/** POST /chats/files with raw bytes. */
export async function upload(token: string, bytes: Uint8Array, mediaType: string, name = 'file.bin', init: { headers?: Record<string, string> } = {}): Promise<Upload> {
  const res = await exports.default.fetch(`http://chatd.test/api/v2/chats/files?name=${encodeURIComponent(name)}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': mediaType, ...init.headers },
    body: bytes,
  });
  const text = await res.text();
  let body: unknown = null;
  try {
    body = JSON.parse(text);
  } catch {
    body = text;
  }
  return { status: res.status, body, headers: res.headers };
}

/** GET /chats/files/{id}: status, headers and bytes. */
export async function download(token: string, id: string): Promise<{ status: number; headers: Headers; bytes: Uint8Array }> {
  const res = await exports.default.fetch(`http://chatd.test/api/v2/chats/files/${id}`, { headers: { authorization: `Bearer ${token}` } });
  return { status: res.status, headers: res.headers, bytes: new Uint8Array(await res.arrayBuffer()) };
}

export async function sha256(bytes: Uint8Array): Promise<string> {
  return [...new Uint8Array(await crypto.subtle.digest('SHA-256', bytes))].map((x) => x.toString(16).padStart(2, '0')).join('');
}
