/** A WebSocket client for the chat stream, inside workerd, that records every event and fails on timeout. */
import { exports } from 'cloudflare:workers';
import { z } from 'zod';

const Message = z.object({ id: z.number(), role: z.string(), content: z.array(z.looseObject({ type: z.string() })) }).loose();
export const StreamEvent = z.discriminatedUnion('type', [
  z.object({ type: z.literal('message'), chat_id: z.string(), message: Message }),
  z.object({
    type: z.literal('message_part'),
    chat_id: z.string(),
    message_part: z.object({ role: z.enum(['assistant', 'tool']), part: z.looseObject({ type: z.string() }), seq: z.number() }),
  }),
  z.object({
    type: z.literal('status'),
    chat_id: z.string(),
    status: z.object({ status: z.string(), last_error: z.object({ message: z.string(), kind: z.string() }).optional() }),
  }),
  z.object({ type: z.literal('error'), chat_id: z.string(), error: z.object({ message: z.string(), kind: z.string() }) }),
  z.object({ type: z.literal('queue_update'), chat_id: z.string(), queued_messages: z.array(z.looseObject({ id: z.string() })) }),
  z.object({ type: z.literal('full_refresh'), chat_id: z.string(), messages: z.array(Message) }),
  z.object({ type: z.literal('context_dirty'), chat_id: z.string() }),
]);
export type StreamEvent = z.infer<typeof StreamEvent>;
const Pong = z.object({ type: z.literal('pong') }).strict();
export type StreamMessage = z.infer<typeof Message>;

export class StreamClient {
  readonly events: StreamEvent[] = [];
  readonly frames: StreamEvent[][] = [];
  closed: { code: number; reason: string } | null = null;
  /** `{"type":"pong"}` frames: the answers to pings. */
  pongs = 0;

  private constructor(readonly ws: WebSocket) {
    ws.addEventListener('message', (e) => {
      const data: unknown = JSON.parse(String(e.data));
      if (Pong.safeParse(data).success) {
        this.pongs += 1;
        return;
      }
      const frame = z.array(StreamEvent).parse(data);
      this.frames.push(frame);
      this.events.push(...frame);
    });
    ws.addEventListener('close', (e) => {
      this.closed = { code: e.code, reason: e.reason };
    });
  }

  /** Opens the stream; answers the HTTP status when the upgrade is refused. */
  static async open(chatId: string, token: string | null, afterId?: number | string): Promise<StreamClient | { status: number; body: string }> {
    const q = afterId === undefined ? '' : `?after_id=${String(afterId)}`;
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
