import { ChatdError, createClient } from '@chatd-edge/sdk';

/**
 * The one API client of the page: same origin, signed by the browser's HttpOnly `session_token` cookie (the stream
 * asks for a single-use ticket, since a browser cannot put a header on a WebSocket).
 */
export const client = createClient({ baseUrl: location.origin });

/**
 * The server's words for an error: the API's `message`, then its `detail` ("Incorrect email or password.") and the
 * fields that failed validation. A 401 also tells the shell that the session ended (it goes to the login).
 */
export function errorText(e: unknown): string {
  if (e instanceof ChatdError) {
    if (e.status === 401) sessionEnded();
    const v = e.validations.map((x) => `${x.field}: ${x.detail}`).join('; ');
    const detail = e.detail && e.detail !== e.message ? ` ${e.detail}` : '';
    return `${e.message}${detail}${v ? ` (${v})` : ''}`;
  }
  return e instanceof Error ? e.message : String(e);
}

/** True for a 401 (no session, or it ended). */
export const isUnauthorized = (e: unknown): boolean => e instanceof ChatdError && e.status === 401;

const endedListeners = new Set<() => void>();
/** The session ended (revoked elsewhere, expired): the shell goes to the login and comes back here after it. */
export function sessionEnded(): void {
  for (const l of endedListeners) l();
}
export function onSessionEnded(l: () => void): () => void {
  endedListeners.add(l);
  return () => {
    endedListeners.delete(l);
  };
}

/** Every network action of the UI has a timeout: past it, the action fails with a message that says so. */
export const ACTION_TIMEOUT_MS = 15_000;
export async function withTimeout<T>(p: Promise<T>, what: string, ms = ACTION_TIMEOUT_MS): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} took longer than ${Math.round(ms / 1000)} s: try again.`)), ms);
  });
  try {
    return await Promise.race([p, late]);
  } finally {
    clearTimeout(timer);
  }
}
