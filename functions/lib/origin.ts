/**
 * Cross-site WebSocket hijacking: a browser opens a WebSocket to any site and sends that site's cookies, so
 * any web page could read a signed-in user's chat stream. Browsers always say which page asks (`Origin`), so
 * a request with an Origin must come from this deployment's own origin or one listed in
 * STREAM_ALLOWED_ORIGINS. Requests without one (curl, SDKs, servers) are not browsers acting for a user and pass.
 */
import { settings } from '../env';
import { ApiError } from '../core/errors';

/** `https://Example.com/` and `https://example.com` are the same origin; null for what is not one. */
const originOf = (s: string): string | null => {
  const url = URL.parse(s);
  return url && (url.protocol === 'https:' || url.protocol === 'http:') ? url.origin : null;
};

/** Throws 403 when the request carries an Origin that may not use this deployment from a browser. */
export function assertAllowedOrigin(req: Request, env: Env): void {
  const origin = req.headers.get('origin');
  if (origin === null) return;
  const own = new URL(req.url).origin;
  const allowed = settings(env).STREAM_ALLOWED_ORIGINS.map(originOf);
  if (origin === own || allowed.includes(originOf(origin) ?? '')) return;
  throw new ApiError(403, 'Pages of this origin may not open the stream.', 'Add it to STREAM_ALLOWED_ORIGINS to allow it.');
}
