import { ChatdError, createClient } from '@chatd-edge/sdk';

/**
 * The one API client of the page: same origin, signed by the browser's HttpOnly `session_token` cookie (the stream
 * asks for a single-use ticket, since a browser cannot put a header on a WebSocket).
 */
export const client = createClient({ baseUrl: location.origin });

/** The server's message for an error (`ChatdError` carries the API's `message` and `validations`). */
export function errorText(e: unknown): string {
  if (e instanceof ChatdError) {
    const v = e.validations.map((x) => `${x.field}: ${x.detail}`).join('; ');
    return v ? `${e.message} (${v})` : e.message;
  }
  return e instanceof Error ? e.message : String(e);
}

/** True for a 401 (no session, or it ended). */
export const isUnauthorized = (e: unknown): boolean => e instanceof ChatdError && e.status === 401;
