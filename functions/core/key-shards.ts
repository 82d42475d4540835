/**
 * How the Worker finds the AuthDirectory shard that owns a key, and what a shard answers. Shared by the Worker and
 * the objects, so neither imports the other.
 */
import type { Role } from './roles';

/** The user and the key (session or API key) a token authenticated as. */
export interface KeyIdentity {
  userId: string;
  email: string;
  username: string;
  roles: Role[];
  createdAt: Date;
  keyId: string;
  keyKind: 'session' | 'api_key';
  /** When the key stops working (epoch ms): a stream opened with it closes then (4401). */
  expiresAt: number;
  /** The user's groups (chats shared with a group): cached with the key, forgotten with it on a membership change. */
  groupIds: string[];
}

/** `need_url`: the shard does not know its database's URL yet; ask again with it. */
export type AuthAnswer =
  | { ok: true; identity: KeyIdentity }
  | { ok: false; reason: 'unknown' | 'expired' | 'suspended' | 'unavailable' | 'need_url' };


/** FNV-1a of a string, as 8 hex digits: names shards per database without putting the URL in the name. */
function fingerprint(s: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h.toString(16).padStart(8, '0');
}

/** The directory shard for a key id: 36 shards per database, by the id's first character. */
export function shardFor(dbUrl: string, keyId: string): string {
  return `${shardPrefix(dbUrl)}${keyId.charAt(0)}`;
}

/** The start of the names of a database's shards. */
export function shardPrefix(dbUrl: string): string {
  return `keys-${fingerprint(dbUrl)}-`;
}

/** Every shard's key-id character: key ids are minted from this alphabet (functions/lib/tokens.ts). */
export const SHARD_CHARS = 'abcdefghijklmnopqrstuvwxyz0123456789';

/** The StreamRegistry object of a user: the chats where the user has streams open. */
export const streamRegistryName = (userId: string): string => `streams-${userId}`;
