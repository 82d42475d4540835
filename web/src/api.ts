import { ChatdError, createClient } from '@chatd-edge/sdk';

/** How long a read (GET) waits for its answer before it is sent again (once); a second silence fails. */
export const READ_WAIT_MS = 10_000;

/**
 * The page's fetch. A read that gets no answer (not even its headers) within READ_WAIT_MS is cancelled and sent once
 * more, and a second silence fails with a message that says so: a screen never stays on "Loading…" because one
 * request went unanswered. Reads are safe to repeat; every other method goes through once, as the SDK decides.
 */
async function patientFetch(req: Request): Promise<Response> {
  if (req.method !== 'GET') return await fetch(req);
  for (let attempt = 1; ; attempt++) {
    const ctl = new AbortController();
    const cancel = () => ctl.abort(req.signal.reason);
    req.signal.addEventListener('abort', cancel);
    const wait = { silent: false };
    const timer = setTimeout(() => {
      wait.silent = true;
      ctl.abort();
    }, READ_WAIT_MS);
    try {
      return await fetch(new Request(req, { signal: ctl.signal }));
    } catch (e) {
      if (!wait.silent || req.signal.aborted) throw e;
      if (attempt >= 2) throw new Error(`The server did not answer within ${READ_WAIT_MS / 1000} s: try again.`);
    } finally {
      clearTimeout(timer);
      req.signal.removeEventListener('abort', cancel);
    }
  }
}

/**
 * The one API client of the page: same origin, signed by the browser's HttpOnly `session_token` cookie (the stream
 * asks for a single-use ticket, since a browser cannot put a header on a WebSocket). Reads are patient (patientFetch).
 */
export const client = createClient({ baseUrl: location.origin, fetch: patientFetch });

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
