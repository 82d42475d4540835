/** Reading the audit log (owners), and its purge by the cron. */
import { z } from 'zod';
import type { Queryable } from '../core/db';
import { AuditEvent, type AuditAction } from '../core/shapes/sso';
import { listAuditEvents, purgeAuditEvents } from '../../sql/generated/audit.queries';

/** A stored event: the API's shape, with the time as Postgres hands it over and the actor's id unchecked. */
const Row = AuditEvent.extend({ at: z.coerce.date(), actor_id: z.string().nullable() });

export interface AuditFilter {
  from?: string;
  to?: string;
  actor_id?: string;
  action?: AuditAction;
  limit: number;
  offset: number;
}

export async function listAudit(db: Queryable, f: AuditFilter): Promise<AuditEvent[]> {
  const rows = await listAuditEvents.run(
    {
      from: f.from ? new Date(f.from) : null,
      to: f.to ? new Date(f.to) : null,
      actor_id: f.actor_id ?? null,
      action: f.action ?? null,
      limit: f.limit,
      offset: f.offset,
    },
    db,
  );
  return rows.map((r) => {
    const e = Row.parse(r);
    return { ...e, at: e.at.toISOString() };
  });
}

const CSV_COLUMNS = ['id', 'at', 'actor_id', 'actor_email', 'action', 'target_type', 'target_id', 'ip', 'detail'] as const;

/** RFC 4180 CSV; a cell that a spreadsheet would run as a formula is prefixed with a quote. */
export function toCsv(events: AuditEvent[]): string {
  const cell = (v: unknown): string => {
    let s = v === null || v === undefined ? '' : typeof v === 'string' ? v : JSON.stringify(v);
    if (/^[=+\-@\t\r]/.test(s)) s = `'${s}`;
    return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
  };
  const lines = [CSV_COLUMNS.join(',')];
  for (const e of events) lines.push(CSV_COLUMNS.map((k) => cell(e[k])).join(','));
  return `${lines.join('\r\n')}\r\n`;
}

/** Deletes events older than the retention, in batches; answers how many went. */
export async function purgeAudit(db: Queryable, days: number, batch = 5000, maxBatches = 20): Promise<number> {
  let total = 0;
  for (let i = 0; i < maxBatches; i++) {
    const [r] = await purgeAuditEvents.run({ days, batch }, db);
    const n = r?.n ?? 0;
    total += n;
    if (n < batch) break;
  }
  return total;
}
