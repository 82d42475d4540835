/**
 * The writes Postgres could not take, kept in the object's own SQLite storage, in order, until Postgres has
 * committed them. Each entry carries its own idempotency key (the turn id), so applying one whose commit reply was
 * lost a second time changes nothing. It depends only on a tiny SQL interface, so it is tested on its own.
 *
 * Nothing is written here on the happy path: the room adds an entry only after a write to Postgres failed.
 */
import { z } from 'zod';
import { log } from '../../functions/core/log';

/** Rows of the outbox's own SQLite queries (built once: a zod schema costs more to build than to run). */
const CountRow = z.object({ n: z.number().int() });
const OldestRow = z.object({ at: z.number() });
import { FinishEntry } from './turn';

/** The part of `SqlStorage` the outbox uses. */
export interface Sql {
  exec(query: string, ...bindings: (string | number | null)[]): { toArray(): Record<string, unknown>[] };
}

export interface OutboxItem {
  seq: number;
  entry: FinishEntry;
  /** Epoch milliseconds when it was added. */
  createdAt: number;
  /** Failed attempts to apply it. */
  attempts: number;
}

const Row = z.object({ seq: z.number().int(), entry: z.string(), created_at: z.number(), attempts: z.number().int() });

export class Outbox {
  private ready = false;
  /** The number of entries, known after the first read (kept current by this object, the only writer). */
  private count: number | null = null;

  constructor(private readonly sql: Sql) {}

  private table(): void {
    if (this.ready) return;
    this.sql.exec(
      `CREATE TABLE IF NOT EXISTS outbox (
         seq INTEGER PRIMARY KEY AUTOINCREMENT,
         entry TEXT NOT NULL,
         created_at INTEGER NOT NULL,
         attempts INTEGER NOT NULL DEFAULT 0
       )`,
    );
    this.ready = true;
  }

  get size(): number {
    if (this.count === null) {
      this.table();
      const [row] = this.sql.exec('SELECT count(*) AS n FROM outbox').toArray();
      this.count = CountRow.parse(row).n;
    }
    return this.count;
  }

  push(entry: FinishEntry, now = Date.now()): void {
    this.table();
    this.sql.exec('INSERT INTO outbox (entry, created_at) VALUES (?, ?)', JSON.stringify(entry), now);
    this.count = this.size + 1;
  }

  /** Every entry, oldest first. An entry that no longer parses is dropped (logged): it could never be applied. */
  all(): OutboxItem[] {
    if (this.size === 0) return [];
    const out: OutboxItem[] = [];
    for (const raw of this.sql.exec('SELECT seq, entry, created_at, attempts FROM outbox ORDER BY seq').toArray()) {
      const row = Row.parse(raw);
      let entry: FinishEntry;
      try {
        entry = FinishEntry.parse(JSON.parse(row.entry));
      } catch (e) {
        log('error', 'dropping an outbox entry that does not parse', { seq: row.seq, error: String(e) });
        this.remove(row.seq);
        continue;
      }
      out.push({ seq: row.seq, entry, createdAt: row.created_at, attempts: row.attempts });
    }
    return out;
  }

  /** Removes an entry once Postgres has committed it. */
  remove(seq: number): void {
    this.table();
    this.sql.exec('DELETE FROM outbox WHERE seq = ?', seq);
    this.count = null;
  }

  failed(seq: number): void {
    this.table();
    this.sql.exec('UPDATE outbox SET attempts = attempts + 1 WHERE seq = ?', seq);
  }

  /** When the oldest entry was added, or null when empty. */
  oldestAt(): number | null {
    if (this.size === 0) return null;
    const [row] = this.sql.exec('SELECT min(created_at) AS at FROM outbox').toArray();
    return OldestRow.parse(row).at;
  }

  clear(): void {
    this.table();
    this.sql.exec('DELETE FROM outbox');
    this.count = 0;
  }

  /** The object's storage was wiped (the chat was deleted): the table is gone, and empty. */
  wiped(): void {
    this.ready = false;
    this.count = 0;
  }
}
