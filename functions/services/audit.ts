/**
 * The audit log: every security and admin event, written by `audit` on the connection (transaction) of the change it
 * records, so a change without its event cannot commit. `audited` runs a change and its event in one transaction.
 *
 * `detail` holds names, ids and flags, never a secret: keys that name secrets are dropped here, whatever a caller
 * passes (and logged, so the caller gets fixed).
 */
import type { Conn, Queryable, Tx } from '../core/db';
import type { AuditAction } from '../core/shapes/sso';
import { log } from '../core/log';
import { insertAuditEvent } from '../../sql/generated/audit.queries';

export interface AuditActor {
  id: string;
  email: string;
}

export interface AuditRecord {
  action: AuditAction;
  actor: AuditActor | null;
  ip: string | null;
  target_type?: string | null;
  target_id?: string | null;
  detail?: Record<string, unknown>;
}

const SECRET_KEY = /secret|password|passwd|token|api_?key|private|credential|authorization|cookie|code_verifier|^key$|^code$/i;

/** A copy of detail without secret-named keys (at any depth); strings are cut at 500 characters. */
export function cleanDetail(detail: unknown, action: string, depth = 0): unknown {
  if (depth > 4) return null;
  if (typeof detail === 'string') return detail.slice(0, 500);
  if (Array.isArray(detail)) return detail.slice(0, 100).map((d) => cleanDetail(d, action, depth + 1));
  if (detail !== null && typeof detail === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(detail)) {
      if (SECRET_KEY.test(k)) {
        log('warn', 'audit detail key dropped: it names a secret', { action, key: k });
        continue;
      }
      out[k] = cleanDetail(v, action, depth + 1);
    }
    return out;
  }
  return detail;
}

/** The client's address (Cloudflare's CF-Connecting-IP, which clients cannot set), or null. */
export function requestIp(req: Request): string | null {
  const ip = req.headers.get('cf-connecting-ip');
  return ip ? ip.trim().slice(0, 64) : null;
}

/** Who did a change, as events name them: the request's actor and address. */
export function auditBy(actor: { userId: string; email: string }, req: Request): Pick<AuditRecord, 'actor' | 'ip'> {
  return { actor: { id: actor.userId, email: actor.email }, ip: requestIp(req) };
}

/** A service's hook that writes its change's event inside the change's transaction (given the change's result). */
export type Recorder<T> = (tx: Tx, result: T) => Promise<void>;

/** Writes nothing: for a change made outside a request (tests, scripts), which has no actor to record. */
export const noEvent = async (): Promise<void> => {};

/** A Recorder writing the event built from the result. */
export function recordWith<T>(event: (result: T) => AuditRecord): Recorder<T> {
  return async (tx, result) => {
    await audit(tx, event(result));
  };
}

/** Writes one event on conn: call it inside the change's transaction. */
export async function audit(conn: Queryable, e: AuditRecord): Promise<void> {
  await insertAuditEvent.run(
    {
      actor_id: e.actor?.id ?? null,
      actor_email: e.actor?.email ?? null,
      action: e.action,
      target_type: e.target_type ?? null,
      target_id: e.target_id ?? null,
      ip: e.ip,
      detail: JSON.stringify(cleanDetail(e.detail ?? {}, e.action)),
    },
    conn,
  );
}

/** Runs change and writes its event (built from the change's result) in one transaction. */
export async function audited<T>(db: Conn, change: (tx: Tx) => Promise<T>, event: (result: T) => AuditRecord): Promise<T> {
  return await db.inTx(async (tx) => {
    const result = await change(tx);
    await audit(tx, event(result));
    return result;
  });
}
