/**
 * How the stream opens a socket, wherever the SDK runs: browsers (the global WebSocket, which cannot send headers,
 * so the SDK uses a stream ticket), Node (an injected `ws`, given the Authorization or Cookie header), and Workers or
 * workerd tests (a fetch with `Upgrade: websocket` whose Response carries `.webSocket`).
 */
import { ChatdError } from './errors.js';
import type { Fetch } from './retry.js';

/** A socket as the stream uses it. */
export interface StreamSocket {
  send(data: string): void;
  close(code?: number, reason?: string): void;
  /** Installs the handlers (once): frames' data, and the close (code and reason) however it happened. */
  listen(handlers: { message: (data: unknown) => void; close: (code: number, reason: string) => void }): void;
}

export interface StreamTransport {
  /** Whether the upgrade request carries the client's headers (Authorization, Cookie); if not, the SDK uses a ticket. */
  readonly sendsHeaders: boolean;
  /**
   * Opens a socket to `url` (http or https; the transport picks ws or wss). Resolves once it is open; rejects with a
   * ChatdError, with the HTTP status when the transport can tell it (0 when it cannot), when the upgrade fails.
   */
  open(url: string, headers: Record<string, string>): Promise<StreamSocket>;
}

/** What browsers' WebSocket, `ws`'s and workerd's have in common (listeners get their events as `unknown`). */
interface EventSocket {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  addEventListener(type: 'open' | 'message' | 'close' | 'error', listener: (event: never) => void): void;
}

function isEventSocket(x: unknown): x is EventSocket {
  return (
    typeof x === 'object' &&
    x !== null &&
    'send' in x &&
    typeof x.send === 'function' &&
    'close' in x &&
    typeof x.close === 'function' &&
    'addEventListener' in x &&
    typeof x.addEventListener === 'function'
  );
}

/** A socket handed over by a fetch (Workers), still to be accepted. */
function isAcceptable(x: unknown): x is EventSocket & { accept(): void } {
  return isEventSocket(x) && 'accept' in x && typeof x.accept === 'function';
}

const field = (event: unknown, name: string): unknown =>
  typeof event === 'object' && event !== null && name in event ? (event as Record<string, unknown>)[name] : undefined;

/**
 * A StreamSocket over an open EventSocket. Its listeners go on at once and keep what arrives until the stream
 * installs its handlers, so a frame sent right after the upgrade is never missed.
 */
function adapt(ws: EventSocket): StreamSocket {
  let handlers: Parameters<StreamSocket['listen']>[0] | null = null;
  const early: (() => void)[] = [];
  const deliver = (f: (h: NonNullable<typeof handlers>) => void) => {
    if (handlers) f(handlers);
    else early.push(() => { if (handlers) f(handlers); });
  };
  let closed = false;
  const closeOnce = (code: number, reason: string) => {
    if (closed) return;
    closed = true;
    deliver((h) => { h.close(code, reason); });
  };
  ws.addEventListener('message', (e: unknown) => {
    const data = field(e, 'data');
    deliver((h) => { h.message(data); });
  });
  ws.addEventListener('close', (e: unknown) => {
    // Completes the closing handshake where the runtime leaves it to us (workerd); elsewhere a no-op.
    try {
      ws.close();
    } catch {
      // already closed
    }
    const code = field(e, 'code');
    const reason = field(e, 'reason');
    closeOnce(typeof code === 'number' ? code : 1006, typeof reason === 'string' ? reason : '');
  });
  ws.addEventListener('error', () => {
    closeOnce(1006, 'socket error');
  });
  return {
    send: (data) => {
      ws.send(data);
    },
    close: (code, reason) => {
      try {
        ws.close(code, reason);
      } catch {
        // already closing
      }
    },
    listen(h) {
      handlers = h;
      for (const f of early.splice(0)) f();
    },
  };
}

/** Resolves once the socket is open; rejects when it fails first (the status parsed from `ws`'s message if any). */
function opened(ws: EventSocket): Promise<StreamSocket> {
  return new Promise((resolve, reject) => {
    let settled = false;
    const fail = (e: unknown) => {
      if (settled) return;
      settled = true;
      const message = field(e, 'message');
      const text = typeof message === 'string' ? message : 'the WebSocket could not be opened';
      // `ws` says "Unexpected server response: 401"; browsers say nothing (status 0: unknown).
      const status = Number(/Unexpected server response: (\d{3})/.exec(text)?.[1] ?? 0);
      reject(new ChatdError(status, status ? `The stream was refused (${status}).` : `The stream could not be opened: ${text}`));
    };
    ws.addEventListener('open', () => {
      if (settled) return;
      settled = true;
      resolve(adapt(ws));
    });
    ws.addEventListener('error', fail);
    ws.addEventListener('close', fail);
  });
}

const toWs = (url: string): string => url.replace(/^http(s?):/, 'ws$1:');

/**
 * The global WebSocket of browsers (and of Node 22+). It cannot send headers: the SDK opens the stream with a ticket
 * (`POST /chats/{id}/stream-ticket`, asked for with the client's token or the browser's cookie).
 */
export function browserTransport(WebSocketClass?: new (url: string) => unknown): StreamTransport {
  return {
    sendsHeaders: false,
    async open(url) {
      const WS = WebSocketClass ?? globalWebSocket();
      const ws: unknown = new WS(toWs(url));
      if (!isEventSocket(ws)) throw new ChatdError(0, 'The WebSocket class does not make WebSockets.');
      return await opened(ws);
    },
  };
}

function globalWebSocket(): new (url: string) => unknown {
  const WS: unknown = Reflect.get(globalThis, 'WebSocket');
  if (typeof WS !== 'function') throw new ChatdError(0, 'No global WebSocket here: pass `WebSocket` (e.g. the `ws` package) to createClient.');
  return WS as new (url: string) => unknown;
}

/**
 * A WebSocket class that takes headers in its options, like the `ws` package in Node: `nodeTransport(WebSocket)`.
 * `options` are added to every socket's (e.g. `{ perMessageDeflate: false }`).
 */
export function nodeTransport(
  WebSocketClass: new (url: string, options: { headers: Record<string, string> }) => unknown,
  options: Record<string, unknown> = {},
): StreamTransport {
  return {
    sendsHeaders: true,
    async open(url, headers) {
      const ws: unknown = new WebSocketClass(toWs(url), { ...options, headers });
      if (!isEventSocket(ws)) throw new ChatdError(0, 'The WebSocket class does not make WebSockets.');
      return await opened(ws);
    },
  };
}

/**
 * A fetch whose Response to `Upgrade: websocket` carries the socket (`.webSocket`), as in Workers and in workerd tests
 * (`exports.default.fetch`). A refused upgrade is a ChatdError with the status and the server's error body.
 */
export function fetchTransport(fetch: Fetch): StreamTransport {
  return {
    sendsHeaders: true,
    async open(url, headers) {
      let res: Response;
      try {
        res = await fetch(new Request(url, { headers: { ...headers, upgrade: 'websocket' } }));
      } catch (e) {
        throw ChatdError.network(e);
      }
      const ws: unknown = 'webSocket' in res ? res.webSocket : null;
      if (res.status !== 101 || !isAcceptable(ws)) throw await ChatdError.fromResponse(res);
      ws.accept();
      return adapt(ws);
    },
  };
}
