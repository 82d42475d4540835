/**
 * Stream tickets: single-use credentials for `GET /chats/{id}/stream?ticket=`, for clients that cannot put a token on
 * a WebSocket request (browsers). The chat's object mints them after its owner check and consumes them itself, so a
 * ticket opens only its own chat's stream. They live in the object's key-value storage (under the SHA-256 of the
 * ticket, never the ticket itself), so one minted before an eviction still works, once, after it.
 */
import { z } from 'zod';
import { randomString, sha256Hex } from '../../functions/core/crypto';

export const TICKET_TTL_MS = 60_000;
/** Tickets a chat keeps at most: minting more drops the oldest (a client asks for one per connection attempt). */
export const MAX_TICKETS = 100;
const PREFIX = 'ticket:';

/** Who a ticket stands for: the user, and the session or API key that minted it (revoking that key ends the socket). */
export interface TicketHolder {
  userId: string;
  keyId: string;
  /** When that credential expires (epoch ms; null: it does not): the socket closes with 4401 then. */
  keyExpiresAt: number | null;
  /** The user's groups when the request was authenticated (a chat shared with a group opens to its members). */
  groupIds: string[];
}

/** A stored ticket, parsed when read back. */
const Stored = z.object({
  userId: z.string().min(1),
  keyId: z.string(),
  keyExpiresAt: z.number().nullable().default(null),
  groupIds: z.array(z.string()).default([]),
  expiresAt: z.number(),
});

/** The stream request's credential as the Worker passes it: a ticket, or the actor it authenticated. */
export const StreamCredential = z.union([
  z.object({ ticket: z.string().min(1).max(256) }),
  z.object({
    userId: z.string().min(1),
    keyId: z.string(),
    keyExpiresAt: z.coerce.number().int().positive().nullable(),
    groupIds: z.array(z.uuid()).max(1000),
  }),
]);
export type StreamCredential = z.infer<typeof StreamCredential>;

export const TICKET_REFUSED = 'The stream ticket is unknown, expired or already used: ask for a new one.';

export class Tickets {
  constructor(
    private readonly kv: SyncKvStorage,
    /** The clock (tests move it). */
    private readonly now: () => number = Date.now,
  ) {}

  /** A new ticket for `holder`, valid for TICKET_TTL_MS. */
  async mint(holder: TicketHolder): Promise<{ ticket: string; expires_at: string }> {
    // 43 alphanumeric characters: 256 bits.
    const ticket = randomString(43);
    const expiresAt = this.now() + TICKET_TTL_MS;
    this.prune();
    this.kv.put(await keyOf(ticket), { ...holder, expiresAt });
    return { ticket, expires_at: new Date(expiresAt).toISOString() };
  }

  /** The holder of a valid ticket, which is used up by this call; null for an unknown, expired or used one. */
  async consume(ticket: string): Promise<TicketHolder | null> {
    const key = await keyOf(ticket);
    // Read and delete with no await between: two requests with one ticket cannot both get it.
    const stored = Stored.safeParse(this.kv.get(key));
    this.kv.delete(key);
    if (!stored.success || stored.data.expiresAt <= this.now()) return null;
    const { userId, keyId, keyExpiresAt, groupIds } = stored.data;
    return { userId, keyId, keyExpiresAt, groupIds };
  }

  /** The holder of a stream request's credential: the actor the Worker authenticated, or the ticket's. */
  async holder(credential: StreamCredential): Promise<TicketHolder | null> {
    return 'ticket' in credential ? await this.consume(credential.ticket) : credential;
  }

  /** Drops expired tickets, and the oldest beyond MAX_TICKETS - 1 (room for the one being minted). */
  private prune(): void {
    const live: { key: string; expiresAt: number }[] = [];
    for (const [key, value] of this.kv.list({ prefix: PREFIX })) {
      const stored = Stored.safeParse(value);
      if (!stored.success || stored.data.expiresAt <= this.now()) this.kv.delete(key);
      else live.push({ key, expiresAt: stored.data.expiresAt });
    }
    live.sort((a, b) => a.expiresAt - b.expiresAt);
    for (const t of live.slice(0, Math.max(0, live.length - (MAX_TICKETS - 1)))) this.kv.delete(t.key);
  }
}

const keyOf = async (ticket: string): Promise<string> => `${PREFIX}${await sha256Hex(ticket)}`;
