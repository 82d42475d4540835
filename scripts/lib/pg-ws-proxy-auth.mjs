// @ts-check
/**
 * Who may use the local Postgres WebSocket proxy (scripts/lib/pg-ws-proxy.mjs). Local Postgres trusts every local
 * connection and any web page can open a WebSocket to 127.0.0.1, so: no request that carries an Origin header
 * (browsers always send one; the Neon driver, in workerd or Node, never does), and only clients with the run's token.
 */
import { timingSafeEqual } from 'node:crypto';

/**
 * Whether an upgrade request may use the proxy: no Origin (not a web page) and this run's token.
 * @param {import('node:http').IncomingMessage} req
 * @param {string} token
 * @returns {{ ok: true } | { ok: false, status: number, reason: string }}
 */
export function checkUpgrade(req, token) {
  if (req.headers.origin !== undefined) return { ok: false, status: 403, reason: 'web pages may not use this proxy' };
  const given = Buffer.from(new URL(req.url ?? '/', 'http://proxy').searchParams.get('token') ?? '');
  const want = Buffer.from(token);
  if (given.length !== want.length || !timingSafeEqual(given, want)) return { ok: false, status: 401, reason: 'a valid token is required' };
  return { ok: true };
}

