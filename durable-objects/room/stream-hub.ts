/**
 * The chat's WebSocket fan-out: accepted sockets (Hibernation API), their attachments, the batching of a turn's
 * deltas into frames, and the rule that a socket never receives a durable message it already has. It knows nothing
 * of Postgres or turns: the room hands it events.
 */
import { z } from 'zod';
import type { StreamEvent } from '../../functions/core/room-api';

/** Per-socket state, kept in the socket's attachment so it survives hibernation. Parsed when restored. */
const Attachment = z.object({
  userId: z.string(),
  /** The session or API key the socket was opened with. */
  keyId: z.string().default(''),
  /** The newest durable message id the socket has. */
  lastId: z.number().int().nonnegative(),
  /** When the credential it was opened with expires (epoch ms): it closes then with 4401. Null: never. */
  expiresAt: z.number().nullable().default(null),
  /** The user's groups (access through a group ends when they leave it: the socket closes with 4403). */
  groupIds: z.array(z.string()).default([]),
});
export type Attachment = z.infer<typeof Attachment>;

/** Frames a client may send. Anything else closes the socket with 1008. */
const ClientFrame = z.object({ type: z.literal('ping') }).strict();
export const PING = '{"type":"ping"}';
export const PONG = '{"type":"pong"}';

export class StreamHub {
  private readonly attachments = new Map<WebSocket, Attachment>();
  /** `message_part` events not sent yet: a turn's deltas go out together, one frame per flush interval. */
  private pendingParts: StreamEvent[] = [];
  private flushTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    private readonly ctx: DurableObjectState,
    /** STREAM_FLUSH_MS: 0 sends a frame per delta. */
    private readonly flushMs: number,
  ) {
    // Pings are answered by the runtime, without waking a hibernated object (other spellings reach `message`).
    ctx.setWebSocketAutoResponse(new WebSocketRequestResponsePair(PING, PONG));
  }

  get count(): number {
    return this.open().length;
  }

  /** Sockets still open (one the server has closed can linger in the runtime's list while its close completes). */
  private open(): WebSocket[] {
    return this.ctx.getWebSockets().filter((ws) => ws.readyState === WebSocket.OPEN);
  }

  /** Whether `userId` has a socket open. */
  watching(userId: string): boolean {
    return this.open().some((ws) => this.attachment(ws)?.userId === userId);
  }

  /**
   * Takes over a new socket. Until `attach` it has no attachment and receives nothing, so the events built for its
   * first frame cannot be sent to it twice.
   */
  accept(server: WebSocket): void {
    this.ctx.acceptWebSocket(server);
  }

  /**
   * Sends a new socket its first frame. Deltas still waiting go to the other sockets first: the first frame holds
   * every part so far, and nothing reaches the new socket twice.
   */
  attach(ws: WebSocket, att: Attachment, first: StreamEvent[]): void {
    this.flush();
    this.setAttachment(ws, att);
    this.sendTo(ws, first);
  }

  /** Sends events to every socket, after the deltas still waiting, in one frame. */
  publish(events: StreamEvent[]): void {
    this.fanOut(this.pendingParts.length > 0 ? [...this.takePendingParts(), ...events] : events);
  }

  /**
   * A delta of the turn in progress. The first (seq 0) goes out at once (time to first token); later ones wait
   * for the next flush, so a fast model costs one frame and one send per socket per interval, not per token.
   */
  part(event: StreamEvent & { type: 'message_part' }): void {
    if (event.message_part.seq === 0 || this.flushMs === 0) {
      this.publish([event]);
      return;
    }
    this.pendingParts.push(event);
    this.flushTimer ??= setTimeout(() => {
      this.flushTimer = undefined;
      this.flush();
    }, this.flushMs);
  }

  /** Sends the waiting deltas now. */
  flush(): void {
    this.fanOut(this.takePendingParts());
  }

  /** Replaces every socket's history (after an edit): each now has up to the newest of `messages`. */
  refresh(chatId: string, messages: StreamEvent & { type: 'full_refresh' }): void {
    this.flush();
    const lastId = messages.messages.at(-1)?.id ?? 0;
    for (const ws of this.ctx.getWebSockets()) {
      const att = this.attachment(ws);
      if (!att) continue;
      this.setAttachment(ws, { ...att, lastId });
      this.sendTo(ws, [{ ...messages, chat_id: chatId }]);
    }
  }

  /** Closes every socket (the chat was deleted) and drops what is waiting. */
  closeAll(code: number, reason: string): void {
    this.takePendingParts();
    for (const ws of this.ctx.getWebSockets()) close(ws, code, reason);
    this.attachments.clear();
  }

  /** A user's groups changed: their sockets here keep the new list (checked by `closeWhere` after). */
  regroup(userId: string, groupIds: string[]): void {
    for (const ws of this.open()) {
      const att = this.attachment(ws);
      if (att?.userId === userId) this.setAttachment(ws, { ...att, groupIds });
    }
  }

  /** Closes the sockets whose attachment matches (e.g. opened with a revoked key); answers how many. */
  closeWhere(pred: (att: Attachment) => boolean, code: number, reason: string): number {
    let n = 0;
    for (const ws of this.ctx.getWebSockets()) {
      const att = this.attachment(ws);
      if (att && pred(att)) {
        this.attachments.delete(ws);
        close(ws, code, reason);
        n += 1;
      }
    }
    return n;
  }

  /** Closes the sockets whose credential has expired by `now` (4401); answers the users whose sockets closed. */
  closeExpired(now: number): string[] {
    const users = new Set<string>();
    this.closeWhere(
      (att) => {
        const expired = att.expiresAt !== null && att.expiresAt <= now;
        if (expired) users.add(att.userId);
        return expired;
      },
      4401,
      'credential expired',
    );
    return [...users];
  }

  /** When the next socket's credential expires, or null when none will. */
  nextExpiry(): number | null {
    let next: number | null = null;
    for (const ws of this.open()) {
      const at = this.attachment(ws)?.expiresAt ?? null;
      if (at !== null && (next === null || at < next)) next = at;
    }
    return next;
  }

  /** The user a socket belongs to (null when it has no attachment yet). */
  userOf(ws: WebSocket): string | null {
    return this.attachment(ws)?.userId ?? null;
  }

  /** A client frame that reached the object (the runtime answers the exact ping itself). */
  message(ws: WebSocket, data: string | ArrayBuffer): void {
    let frame: unknown = null;
    try {
      frame = typeof data === 'string' ? JSON.parse(data) : null;
    } catch {
      frame = null;
    }
    if (ClientFrame.safeParse(frame).success) {
      try {
        ws.send(PONG);
      } catch {
        this.forget(ws);
      }
      return;
    }
    this.attachments.delete(ws);
    close(ws, 1008, 'unsupported frame: the stream accepts only {"type":"ping"}');
  }

  closed(ws: WebSocket, code: number): void {
    this.attachments.delete(ws);
    close(ws, code === 1005 || code === 1006 ? 1000 : code, 'closing');
  }

  /** Whether `userId` still has a socket open, not counting `leaving` (which is closing now). */
  stillWatching(userId: string, leaving: WebSocket): boolean {
    return this.open().some((ws) => ws !== leaving && this.attachment(ws)?.userId === userId);
  }

  forget(ws: WebSocket): void {
    this.attachments.delete(ws);
  }

  private attachment(ws: WebSocket): Attachment | null {
    const known = this.attachments.get(ws);
    if (known) return known;
    const parsed = Attachment.safeParse(ws.deserializeAttachment());
    if (!parsed.success) return null;
    this.attachments.set(ws, parsed.data);
    return parsed.data;
  }

  private setAttachment(ws: WebSocket, att: Attachment): void {
    this.attachments.set(ws, att);
    ws.serializeAttachment(att);
  }

  /** The waiting `message_part` events, handed over once: the flush timer is cancelled. */
  private takePendingParts(): StreamEvent[] {
    if (this.flushTimer !== undefined) clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    const parts = this.pendingParts;
    this.pendingParts = [];
    return parts;
  }

  private fanOut(events: StreamEvent[]): void {
    if (events.length === 0) return;
    let encoded: string | null = null;
    for (const ws of this.ctx.getWebSockets()) {
      const att = this.attachment(ws);
      if (!att) continue;
      let lastId = att.lastId;
      const frame = events.filter((e) => {
        if (e.type !== 'message') return true;
        if (e.message.id <= lastId) return false;
        lastId = e.message.id;
        return true;
      });
      if (lastId !== att.lastId) this.setAttachment(ws, { ...att, lastId });
      // Most frames are the same for every socket: encode once.
      if (frame.length !== events.length) this.sendTo(ws, frame);
      else this.sendEncoded(ws, (encoded ??= JSON.stringify(events)));
    }
  }

  private sendTo(ws: WebSocket, events: StreamEvent[]): void {
    if (events.length === 0) return;
    this.sendEncoded(ws, JSON.stringify(events));
  }

  private sendEncoded(ws: WebSocket, frame: string): void {
    try {
      ws.send(frame);
    } catch {
      // A dead socket never holds up the others.
      this.attachments.delete(ws);
      close(ws, 1011, 'send failed');
    }
  }
}

function close(ws: WebSocket, code: number, reason: string): void {
  try {
    ws.close(code, reason);
  } catch {
    // already closed
  }
}
