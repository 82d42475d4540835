/**
 * `ChatStream`: a chat's stream that reconnects by itself (jittered exponential backoff), resumes after the last
 * durable message it has, and applies the resume rules of `stream-state.ts`, so its listeners and iterators see every
 * event once. A ping the server answers detects a dead socket. Close codes 4404 (chat deleted), 4403 (a viewer's access
 * ended), 4401 (credential revoked or expired) and 1008 (a frame the server refused) end it with a ChatdError instead of reconnecting.
 */
import { ChatdError } from './errors.js';
import { parseFrame } from './frames.js';
import { backoffMs, sleep, type BackoffOptions } from './retry.js';
import { StreamState, type PartialTurn, type ResumeCounts, type StreamStatus } from './stream-state.js';
import type { StreamSocket, StreamTransport } from './transport.js';
import type { Message, QueuedMessage, StreamEvent } from './types.js';

export interface StreamOptions {
  /** Receive durable messages after this id (default 0: the whole history). */
  afterId?: number;
  /** Aborting it closes the stream. */
  signal?: AbortSignal;
  /** The delay between reconnects (default: up to 250 ms, doubling to 10 s, with full jitter). */
  reconnect?: BackoffOptions;
  /** How often to ping an open socket (default 20 s; 0: never). */
  pingIntervalMs?: number;
  /** A socket that answers nothing this long after a ping is dead, and replaced (default 10 s). */
  pongTimeoutMs?: number;
}

/** What the client hands the stream: where and how to connect. */
export interface StreamConnector {
  transport: StreamTransport;
  /** The stream's URL (http or https) for a connect after `afterId`, with a ticket when there is one. */
  url(afterId: number, ticket: string | null): string;
  /** The client's credential headers, for transports that send headers. */
  headers: Record<string, string>;
  /** A new stream ticket, for transports that cannot send headers. */
  ticket(): Promise<string>;
}

/** The lifecycle of the stream, besides the server's events. */
export interface StreamLifecycle {
  /** Connected; the first frame is applied. `reconnected` when it is not the first connection. */
  open: { type: 'open'; reconnected: boolean };
  /** A connection ended (or failed to open); the stream reconnects after `retryInMs`. */
  disconnect: { type: 'disconnect'; code: number; reason: string; error: ChatdError | null; retryInMs: number };
  /** The stream ended: `close()`, the signal, or a close code that forbids reconnecting (`error`). */
  close: { type: 'close'; error: ChatdError | null };
  /** Every checked frame as it arrived, before the resume rules (diagnostics, measurements). */
  frame: { type: 'frame'; events: readonly StreamEvent[] };
  /** The state (`messages`, `status`, `queue`, `partial`) changed. */
  change: { type: 'change' };
}

export type StreamEventMap = { [K in StreamEvent['type']]: Extract<StreamEvent, { type: K }> } & StreamLifecycle;
type Listener<K extends keyof StreamEventMap> = (event: StreamEventMap[K]) => void;
/** An iterator's events not taken yet, and how to wake it. */
interface Inbox {
  queue: StreamEvent[];
  wake: (() => void) | null;
}

const PING = '{"type":"ping"}';
/** Statuses of a refused connect that retrying cannot fix. */
const FATAL_STATUS = new Set([400, 401, 403, 404, 426]);

/** The error a close code stands for, when it forbids reconnecting. */
function closeError(code: number, reason: string): ChatdError | null {
  const why = reason ? ` (${reason})` : '';
  if (code === 4404) return new ChatdError(404, `The chat was deleted${why}.`, undefined, [], { closeCode: code });
  if (code === 4403) return new ChatdError(403, `Your access to this chat ended${why}.`, undefined, [], { closeCode: code });
  if (code === 4401) return new ChatdError(401, `The credential of the stream was revoked or has expired${why}.`, undefined, [], { closeCode: code });
  if (code === 1008) return new ChatdError(400, `The server refused a frame of this client${why}.`, undefined, [], { closeCode: code });
  return null;
}

export class ChatStream implements AsyncIterable<StreamEvent> {
  /** Why the stream ended, when something ended it (null while open, or after `close()`). */
  error: ChatdError | null = null;
  /** Whether a socket is open and its first frame applied. */
  connected = false;
  /** Resolves when the stream has ended. */
  readonly closed: Promise<void>;
  /** Connections opened (the first included). */
  connections = 0;

  private readonly state: StreamState;
  private readonly listeners = new Map<keyof StreamEventMap, Set<(event: never) => void>>();
  private readonly inboxes = new Set<Inbox>();
  private readonly stop = new AbortController();
  private ended = false;
  private socket: StreamSocket | null = null;
  private socketGone: Promise<void> = Promise.resolve();
  private markClosed: () => void = () => undefined;

  constructor(
    readonly chatId: string,
    private readonly connector: StreamConnector,
    private readonly options: StreamOptions = {},
  ) {
    this.state = new StreamState(options.afterId ?? 0);
    this.closed = new Promise((resolve) => {
      this.markClosed = resolve;
    });
    if (options.signal?.aborted) {
      this.finish(null);
      return;
    }
    options.signal?.addEventListener('abort', () => {
      void this.close();
    });
    this.run().catch((e: unknown) => {
      // Not expected (every failure of a connect is handled in run); the stream ends with it rather than hang.
      this.finish(e instanceof ChatdError ? e : new ChatdError(0, `The stream failed: ${e instanceof Error ? e.message : String(e)}`));
    });
  }

  /** Durable messages, in id order, each once; replaced by a `full_refresh`. */
  get messages(): readonly Message[] {
    return this.state.messages;
  }

  get status(): StreamStatus | null {
    return this.state.status;
  }

  get queue(): readonly QueuedMessage[] {
    return this.state.queue;
  }

  /** The turn in progress, or null. */
  get partial(): PartialTurn | null {
    return this.state.partial;
  }

  /** The newest durable message id received: a reconnect resumes after it. */
  get lastId(): number {
    return this.state.lastId;
  }

  get resumeCounts(): Readonly<ResumeCounts> {
    return this.state.counts;
  }

  /**
   * Listens to a server event type or a lifecycle event; returns the function that stops listening. A server event
   * reaches its listeners once the stream's state (`messages`, `partial`, ...) includes it.
   */
  on<K extends keyof StreamEventMap>(type: K, listener: Listener<K>): () => void {
    let set = this.listeners.get(type);
    if (!set) {
      set = new Set();
      this.listeners.set(type, set);
    }
    const listeners = set;
    listeners.add(listener);
    return () => {
      listeners.delete(listener);
    };
  }

  /** The server's events, after the resume rules; ends when the stream closes (throws its error, if any). */
  [Symbol.asyncIterator](): AsyncIterator<StreamEvent> {
    // Listening starts now, not at the first `next()`: nothing between the two is missed.
    const inbox: Inbox = { queue: [], wake: null };
    this.inboxes.add(inbox);
    return this.drain(inbox, () => {
      this.inboxes.delete(inbox);
    });
  }

  private async *drain(inbox: Inbox, off: () => void): AsyncGenerator<StreamEvent, void, undefined> {
    try {
      for (;;) {
        const next = inbox.queue.shift();
        if (next) {
          yield next;
          continue;
        }
        if (this.ended) {
          if (this.error) throw this.error;
          return;
        }
        await new Promise<void>((resolve) => {
          inbox.wake = resolve;
        });
        inbox.wake = null;
      }
    } finally {
      off();
    }
  }

  /**
   * Resolves once `predicate` holds (checked now and after every change); rejects when the stream ends first or
   * after `timeoutMs`.
   */
  until(predicate: (stream: this) => boolean, o: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<void> {
    return new Promise((resolve, reject) => {
      const cleanups: (() => void)[] = [];
      const done = (err: Error | null) => {
        for (const c of cleanups) c();
        if (err) reject(err);
        else resolve();
      };
      const check = () => {
        if (predicate(this)) done(null);
        else if (this.ended) done(this.error ?? new ChatdError(0, 'The stream closed before the awaited state.'));
      };
      cleanups.push(this.on('change', check), this.on('close', check), this.on('open', check));
      if (o.timeoutMs !== undefined) {
        const t = setTimeout(() => {
          done(new ChatdError(0, `Timed out after ${o.timeoutMs ?? 0} ms waiting on the stream of chat ${this.chatId}.`));
        }, o.timeoutMs);
        cleanups.push(() => {
          clearTimeout(t);
        });
      }
      if (o.signal) {
        const onAbort = () => {
          done(new ChatdError(0, 'Stopped waiting on the stream: aborted.'));
        };
        o.signal.addEventListener('abort', onAbort);
        cleanups.push(() => {
          o.signal?.removeEventListener('abort', onAbort);
        });
      }
      check();
    });
  }

  /** Ends the stream: no more reconnects; resolves once the socket has closed (at most `timeoutMs`, default 2 s). */
  async close(timeoutMs = 2000): Promise<void> {
    const gone = this.socketGone;
    this.finish(null);
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([gone, new Promise<void>((r) => (timer = setTimeout(r, timeoutMs)))]);
    if (timer !== undefined) clearTimeout(timer);
  }

  // ------------------------------------------------------------------ internals

  private async run(): Promise<void> {
    let attempt = 0;
    while (!this.ended) {
      let end: { code: number; reason: string; error: ChatdError | null };
      try {
        end = await this.connectOnce(() => {
          attempt = 0;
        });
      } catch (e) {
        const error = e instanceof ChatdError ? e : ChatdError.network(e);
        if (FATAL_STATUS.has(error.status)) {
          this.finish(error);
          return;
        }
        end = { code: 0, reason: error.message, error };
      }
      // Ended meanwhile (close(), the signal): `stop` is aborted with it.
      if (this.stop.signal.aborted) return;
      const fatal = closeError(end.code, end.reason);
      if (fatal) {
        this.finish(fatal);
        return;
      }
      const retryInMs = backoffMs(attempt, this.options.reconnect);
      attempt += 1;
      this.emit('disconnect', { type: 'disconnect', code: end.code, reason: end.reason, error: end.error, retryInMs });
      await sleep(retryInMs, this.stop.signal);
    }
  }

  /** One connection, from the upgrade to its end; `onFirstFrame` runs once its first frame is applied. */
  private async connectOnce(onFirstFrame: () => void): Promise<{ code: number; reason: string; error: ChatdError | null }> {
    const { transport } = this.connector;
    const ticket = transport.sendsHeaders ? null : await this.connector.ticket();
    const socket = await transport.open(this.connector.url(this.state.lastId, ticket), transport.sendsHeaders ? this.connector.headers : {});
    if (this.ended) {
      socket.close(1000, 'closed');
      return { code: 1000, reason: 'closed', error: null };
    }
    this.socket = socket;
    return await new Promise((resolve) => {
      let first = true;
      let over = false;
      let pingTimer: ReturnType<typeof setInterval> | undefined;
      let pongTimer: ReturnType<typeof setTimeout> | undefined;
      let goneNow: () => void = () => undefined;
      this.socketGone = new Promise((r) => (goneNow = r));
      const end = (code: number, reason: string, error: ChatdError | null = null) => {
        if (over) return;
        over = true;
        if (pingTimer !== undefined) clearInterval(pingTimer);
        if (pongTimer !== undefined) clearTimeout(pongTimer);
        goneNow();
        if (this.socket === socket) this.socket = null;
        if (this.connected) {
          this.connected = false;
          this.emit('change', { type: 'change' });
        }
        resolve({ code, reason, error });
      };
      /** Replaces the socket (the next connect replays what this one may have missed). */
      const drop = (reason: string) => {
        socket.close(4000, reason);
        end(4000, reason);
      };
      socket.listen({
        message: (data) => {
          if (over) return;
          if (pongTimer !== undefined) clearTimeout(pongTimer);
          pongTimer = undefined;
          const frame = parseFrame(data);
          if (frame.kind === 'pong') return;
          if (frame.kind === 'invalid') {
            socket.close(1000, 'unreadable frame');
            end(1000, frame.reason);
            this.finish(new ChatdError(0, `The server sent a frame this SDK cannot read: ${frame.reason}.`));
            return;
          }
          this.deliver(frame.events, first, onFirstFrame, drop);
          first = false;
        },
        close: (code, reason) => {
          end(code, reason);
        },
      });
      const every = this.options.pingIntervalMs ?? 20_000;
      if (every > 0) {
        pingTimer = setInterval(() => {
          if (pongTimer !== undefined || over) return;
          try {
            socket.send(PING);
          } catch {
            drop('the ping could not be sent');
            return;
          }
          pongTimer = setTimeout(() => {
            drop('no answer to a ping');
          }, this.options.pongTimeoutMs ?? 10_000);
        }, every);
      }
    });
  }

  /** Applies a frame and tells the listeners: each event once the state includes it, then `open` (first frame) and `change`. */
  private deliver(events: readonly StreamEvent[], first: boolean, onFirstFrame: () => void, drop: (reason: string) => void): void {
    this.emit('frame', { type: 'frame', events });
    const { gap } = this.state.apply(events, first, (e) => {
      this.emit(e.type, e);
      for (const box of this.inboxes) {
        box.queue.push(e);
        box.wake?.();
      }
    });
    if (first) {
      this.connected = true;
      this.connections += 1;
      onFirstFrame();
      this.emit('open', { type: 'open', reconnected: this.connections > 1 });
    }
    this.emit('change', { type: 'change' });
    if (gap) drop('a part of the turn was missed');
  }

  private emit<K extends keyof StreamEventMap>(type: K, event: StreamEventMap[K]): void {
    for (const listener of this.listeners.get(type) ?? []) {
      try {
        (listener as Listener<K>)(event);
      } catch (e) {
        // A listener's failure is its own: report it without breaking the stream.
        queueMicrotask(() => {
          throw e;
        });
      }
    }
  }

  private finish(error: ChatdError | null): void {
    if (this.ended) return;
    this.ended = true;
    this.error = error;
    this.stop.abort();
    this.socket?.close(1000, 'client closed');
    this.socket = null;
    this.connected = false;
    this.emit('close', { type: 'close', error });
    for (const box of this.inboxes) box.wake?.();
    this.markClosed();
  }
}
