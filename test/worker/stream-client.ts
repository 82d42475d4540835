/** A raw WebSocket client for the chat stream, inside workerd, that records every event and fails on timeout. */
import { exports } from 'cloudflare:workers';
import { StreamFrame, StreamPong, type StreamEvent } from '../../functions/core/shapes/stream';
import type { Message } from '../../functions/core/shapes/chat';

export type { StreamEvent };
export type StreamMessage = Message;

/**
 * The raw protocol, for the suites whose point is the socket itself (close codes, credentials, memory): everything else
 * streams through the SDK (`streamOf` in helpers.ts).
 */
export class StreamClient {
  readonly events: StreamEvent[] = [];
  readonly frames: StreamEvent[][] = [];
  closed: { code: number; reason: string } | null = null;
  /** `{"type":"pong"}` frames: the answers to pings. */
  pongs = 0;

  private constructor(readonly ws: WebSocket) {
    ws.addEventListener('message', (e) => {
      const data: unknown = JSON.parse(String(e.data));
      if (StreamPong.safeParse(data).success) {
        this.pongs += 1;
        return;
      }
      const frame = StreamFrame.parse(data);
      this.frames.push(frame);
      this.events.push(...frame);
    });
    ws.addEventListener('close', (e) => {
      this.closed = { code: e.code, reason: e.reason };
    });
  }

  /** Opens the stream; answers the HTTP status when the upgrade is refused. */
  static async open(
    chatId: string,
    token: string | null,
    afterId?: number | string,
    ticket?: string,
  ): Promise<StreamClient | { status: number; body: string }> {
    const params = new URLSearchParams();
    if (afterId !== undefined) params.set('after_id', String(afterId));
    if (ticket !== undefined) params.set('ticket', ticket);
    const q = params.size > 0 ? `?${params.toString()}` : '';
    const headers: Record<string, string> = { upgrade: 'websocket' };
    if (token) headers.authorization = `Bearer ${token}`;
    const res = await exports.default.fetch(`http://chatd.test/api/v2/chats/${chatId}/stream${q}`, { headers });
    const ws = res.webSocket;
    if (res.status !== 101 || !ws) return { status: res.status, body: await res.text() };
    ws.accept();
    return new StreamClient(ws);
  }

  static async must(chatId: string, token: string, afterId?: number): Promise<StreamClient> {
    const c = await StreamClient.open(chatId, token, afterId);
    if (!(c instanceof StreamClient)) throw new Error(`stream refused: ${c.status} ${c.body}`);
    return c;
  }

  /** A stream opened as `token` (refused: thrown), once its first frame has arrived. */
  static async connected(chatId: string, token: string): Promise<StreamClient> {
    const c = await StreamClient.must(chatId, token);
    await c.waitFor('connect', (x) => x.frames.length > 0);
    return c;
  }

  /** Waits for the socket's close (`closed`), 5 s at most: a bound on a failure, not a measure. */
  async waitClosed(): Promise<void> {
    await this.waitFor('the socket to close', (c) => c.closed !== null, 5_000);
  }

  /** Durable messages received, in arrival order (full refreshes replace them). */
  messages(): StreamMessage[] {
    let out: StreamMessage[] = [];
    for (const e of this.events) {
      if (e.type === 'message') out.push(e.message);
      if (e.type === 'full_refresh') out = [...e.messages];
    }
    return out;
  }

  statuses(): string[] {
    return this.events.flatMap((e) => (e.type === 'status' ? [e.status.status] : []));
  }

  async waitFor(what: string, pred: (c: StreamClient) => boolean, timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!pred(this)) {
      if (Date.now() > deadline) {
        throw new Error(`timed out waiting for ${what}; got ${this.events.map((e) => e.type + (e.type === 'status' ? `:${e.status.status}` : '')).join(', ')}`);
      }
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  /** Waits until the stream reports the chat idle (waiting or error) after a turn started. */
  async waitIdle(timeoutMs = 10_000): Promise<void> {
    await this.waitFor('the turn to end', (c) => {
      const s = c.statuses();
      const lastRunning = s.lastIndexOf('running');
      const lastIdle = Math.max(s.lastIndexOf('waiting'), s.lastIndexOf('error'));
      return lastIdle > lastRunning;
    }, timeoutMs);
  }

  close(): void {
    try {
      this.ws.close(1000, 'done');
    } catch {
      // closed
    }
  }
}
