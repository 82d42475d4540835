import { DurableObject } from 'cloudflare:workers';
import { z } from 'zod';

/**
 * One object per user: the chats where the user has a stream open. A revocation of the user's credentials asks it
 * which chats' objects to tell, so that every socket opened with a revoked key closes at once (4401), wherever it is.
 * The chats' objects keep it current: a chat is added when a socket of the user opens there, and removed when the
 * last one closes. A chat listed by mistake costs one no-op call; none is ever missed.
 */
export class StreamRegistry extends DurableObject<Env> {
  private chatIds: Set<string> | null = null;

  private load(): Set<string> {
    if (!this.chatIds) {
      const raw = this.ctx.storage.kv.get('chats');
      const parsed = z.array(z.string()).safeParse(typeof raw === 'string' ? JSON.parse(raw) : []);
      this.chatIds = new Set(parsed.success ? parsed.data : []);
    }
    return this.chatIds;
  }

  private save(ids: Set<string>): void {
    this.ctx.storage.kv.put('chats', JSON.stringify([...ids]));
  }

  /** A socket of the user opened in this chat. */
  opened(chatId: string): void {
    const ids = this.load();
    if (ids.has(chatId)) return;
    ids.add(chatId);
    this.save(ids);
  }

  /** The user's last socket in this chat closed. */
  closed(chatId: string): void {
    const ids = this.load();
    if (ids.delete(chatId)) this.save(ids);
  }

  /** The chats where the user may have a stream open. */
  chats(): string[] {
    return [...this.load()];
  }
}
