import { DurableObject } from 'cloudflare:workers';

/**
 * One object per chat: the single writer of the chat's history, its bounded message cache, the
 * WebSocket fan-out and the turn runner. The foundation only proves the binding; later work fills it.
 */
export class ChatRoom extends DurableObject<Env> {
  /** Liveness probe over RPC. */
  ping(): string {
    return 'pong';
  }
}
