import { DurableObject } from 'cloudflare:workers';
import { z } from 'zod';
import { dbSettings, settings } from '../functions/core/settings';
import { Db } from '../functions/core/db';
import { DbUnavailableError } from '../functions/core/errors';
import { timingSafeEqual } from '../functions/core/crypto';
import { Role } from '../functions/core/roles';
import { shardPrefix, type AuthAnswer } from '../functions/core/key-shards';
import { deleteApiKey, getApiKeyWithUser, touchApiKey } from '../sql/generated/users.queries';
import { log } from '../functions/core/log';


const KeyRow = z.object({
  key_id: z.string(),
  key_kind: z.enum(['session', 'api_key']),
  hashed_secret: z.string(),
  expires_at: z.coerce.date(),
  user_id: z.string(),
  email: z.string(),
  username: z.string(),
  roles: z.array(Role),
  created_at: z.coerce.date(),
  last_used_at: z.coerce.date().nullable(),
  suspended: z.boolean(),
  group_ids: z.array(z.string()),
});
type KeyRow = z.infer<typeof KeyRow>;

/** `last_used_at` is written at most this often per key: a key used all day costs 24 writes, not one per request. */
const TOUCH_EVERY_MS = 3_600_000;


/** How long a cached key is trusted without asking Postgres (revocation through this object is immediate). */
const CACHE_MS = 60_000;
/**
 * How long an expired cache entry still answers while Postgres cannot be reached (a burst of new connections,
 * a restart): an outage of the key lookup alone must not turn every request into a 503. Revocations through
 * this object stay immediate; only changes made behind the API's back wait this long at worst.
 */
export const STALE_ON_ERROR_MS = 10 * 60_000;
/** Keys a shard keeps; past it the least recently used goes (a flood of lookups cannot clear the cache). */
const MAX_CACHED = 10_000;

/**
 * Token lookups without a fresh Postgres connection per request: a Worker request asks the shard that owns
 * its key id (`shardFor`), which answers from memory or from its own long-lived connection. Every revocation
 * goes through the same shard (`revoke`), so a revoked key stops working at once; a key changed in Postgres
 * behind the API's back is picked up within CACHE_MS.
 */
export class AuthDirectory extends DurableObject<Env> {
  private dbConn: Db | null = null;
  private dbUrl: string | null = null;
  /** Known keys only, least recently used first (Map order): an unknown id is never cached, so random ids cannot evict. */
  private readonly cache = new Map<string, { row: KeyRow; at: number }>();
  /** The bound of `cache` (a field, so a test can make it small). */
  private maxCached = MAX_CACHED;
  /** One Postgres read per key at a time: requests arriving while it runs wait for it (single flight). */
  private readonly inflight = new Map<string, Promise<KeyRow | null>>();
  /** Bumped by every revocation and forget, so a read that started before one is not cached after it. */
  private generation = 0;

  /**
   * The connection to the database the calling Worker serves. Shards are per database (`shardFor` puts a fingerprint
   * of the URL in the name), so one object only ever sees one URL. Callers do not send it: a shard whose name carries
   * the fingerprint of this deployment's DATABASE_URL uses that; another (a Worker serving another database, in tests)
   * is told once, when it asks (`need_url`), and remembers it.
   */
  private db(given?: string): Db {
    const url = given ?? this.dbUrl ?? this.ownUrl();
    if (url === null) throw new NeedUrl();
    if (this.dbConn && this.dbUrl !== url) throw new Error('an AuthDirectory shard serves one database');
    this.dbUrl = url;
    this.dbConn ??= new Db({ ...dbSettings(this.env, { durable: true }), url });
    return this.dbConn;
  }

  private ownUrl(): string | null {
    const own = settings(this.env).DATABASE_URL;
    return own && (this.ctx.id.name ?? '').startsWith(shardPrefix(own)) ? own : null;
  }

  /** Checks a key id and the SHA-256 (hex) of its secret against the database at `dbUrl`. */
  async authenticate(keyId: string, hashedSecret: string, dbUrl?: string): Promise<AuthAnswer> {
    let row: KeyRow | null;
    try {
      row = await this.lookup(dbUrl, keyId);
    } catch (e) {
      if (e instanceof DbUnavailableError) return { ok: false, reason: 'unavailable' };
      if (e instanceof NeedUrl) return { ok: false, reason: 'need_url' };
      throw e;
    }
    if (!row || !timingSafeEqual(hashedSecret, row.hashed_secret)) return { ok: false, reason: 'unknown' };
    if (row.expires_at.getTime() <= Date.now()) return { ok: false, reason: 'expired' };
    if (row.suspended) return { ok: false, reason: 'suspended' };
    await this.touch(row);
    return {
      ok: true,
      identity: {
        userId: row.user_id,
        email: row.email,
        username: row.username,
        roles: row.roles,
        createdAt: row.created_at,
        keyId: row.key_id,
        keyKind: row.key_kind,
        expiresAt: row.expires_at.getTime(),
        groupIds: row.group_ids,
      },
    };
  }

  /** Deletes a key of `userId`; false when there is no such key of theirs. */
  async revoke(dbUrl: string, keyId: string, userId: string): Promise<boolean> {
    const rows = await deleteApiKey.run({ id: keyId, user_id: userId }, this.db(dbUrl));
    this.forget(keyId);
    return rows.length > 0;
  }

  /** Forgets a cached key (after a change made elsewhere); a read of it already under way is not kept. */
  forget(keyId: string): void {
    this.forgetKeys([keyId]);
  }

  /** Forgets cached keys (revoked elsewhere); reads of keys already under way are not kept. */
  forgetKeys(keyIds: string[]): void {
    for (const id of keyIds) {
      this.cache.delete(id);
      this.inflight.delete(id);
    }
    this.generation += 1;
  }

  /** Forgets every cached key of a user (suspended, roles changed): the next request reads them again. */
  forgetUser(userId: string): void {
    for (const [id, entry] of this.cache) if (entry.row.user_id === userId) this.cache.delete(id);
    this.inflight.clear();
    this.generation += 1;
  }

  /**
   * Records that a key was used, at most once per TOUCH_EVERY_MS: the cached row remembers the time, and the
   * statement itself skips a key touched within the hour (another shard instance after a restart, say). A failure
   * is logged, never the request's problem.
   */
  private async touch(row: KeyRow): Promise<void> {
    const now = Date.now();
    if (row.last_used_at !== null && now - row.last_used_at.getTime() < TOUCH_EVERY_MS) return;
    row.last_used_at = new Date(now);
    try {
      await touchApiKey.run({ id: row.key_id }, this.db());
    } catch (e) {
      log('warn', 'cannot record key use', { error: e instanceof Error ? e.message : String(e) });
    }
  }

  private async lookup(dbUrl: string | undefined, keyId: string): Promise<KeyRow | null> {
    const hit = this.cache.get(keyId);
    const now = Date.now();
    if (hit && now - hit.at < CACHE_MS) {
      // Most recently used now: to the end of the eviction order.
      this.cache.delete(keyId);
      this.cache.set(keyId, hit);
      return hit.row;
    }
    let read = this.inflight.get(keyId);
    if (!read) {
      read = this.read(dbUrl, keyId).finally(() => {
        if (this.inflight.get(keyId) === read) this.inflight.delete(keyId);
      });
      this.inflight.set(keyId, read);
    }
    try {
      return await read;
    } catch (e) {
      if (e instanceof DbUnavailableError && hit && now - hit.at < STALE_ON_ERROR_MS) return hit.row;
      throw e;
    }
  }

  private async read(dbUrl: string | undefined, keyId: string): Promise<KeyRow | null> {
    const generation = this.generation;
    const [raw] = await getApiKeyWithUser.run({ id: keyId }, this.db(dbUrl));
    const row = raw ? KeyRow.parse(raw) : null;
    if (generation !== this.generation) return row;
    this.cache.delete(keyId);
    if (row) {
      for (const oldest of this.cache.keys()) {
        if (this.cache.size < this.maxCached) break;
        this.cache.delete(oldest);
      }
      this.cache.set(keyId, { row, at: Date.now() });
    }
    return row;
  }
}

/** Thrown when the shard does not know its database's URL yet: the caller sends it. */
class NeedUrl extends Error {}
