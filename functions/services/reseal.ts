/**
 * Key rotation for sealed values (provider API keys, MCP server headers): re-encrypts, with the ring's current key,
 * the values sealed by an older one, in bounded batches, until none is left or a batch makes no progress.
 */
import type { KeyRing, Sealed } from '../core/keyring';
import { log } from '../core/log';

/** One kind of sealed value: how to find the rows sealed with another key, and how to store a resealed one. */
export interface SealedColumn<R> {
  /** For the log line when a value cannot be opened (its key is no longer configured). */
  what: string;
  /** Up to `limit` rows whose value was sealed with a key other than `currentKeyId`. */
  stale: (currentKeyId: string, limit: number) => Promise<R[]>;
  /** A row's id, its sealed value (null when it has none) and the binding (additional data) it was sealed with. */
  id: (row: R) => string;
  sealed: (row: R) => Sealed | null;
  binding: (row: R) => string;
  /** Stores the resealed value unless someone changed it meanwhile (`previous` is the key it had); rows written. */
  store: (row: R, value: Sealed, previous: string) => Promise<number>;
}

/** Re-encrypts every value of `column` sealed by an older key; returns how many were resealed. */
export async function resealAll<R>(ring: KeyRing, column: SealedColumn<R>, batch = 100): Promise<number> {
  let total = 0;
  for (;;) {
    const rows = await column.stale(ring.currentKeyId, batch);
    if (rows.length === 0) return total;
    let progressed = 0;
    for (const r of rows) {
      const old = column.sealed(r);
      if (!old) continue;
      let plain: string;
      try {
        plain = await ring.open(old, column.binding(r));
      } catch (e) {
        // The old key is no longer configured: nothing we can do but say so.
        log('error', `cannot reseal ${column.what}`, { id: column.id(r), error: String(e) });
        continue;
      }
      progressed += await column.store(r, await ring.seal(plain, column.binding(r)), old.keyId);
    }
    total += progressed;
    if (progressed === 0 || rows.length < batch) return total;
  }
}
