/**
 * The chat object's side of spend limits. Before a turn on a priced model calls it, the chat's owner's meter (one
 * `UsageMeter` per user: durable-objects/usage-meter.ts) says whether they are still below their limit; once a
 * priced answer is written, the meter is told what it cost. Turns on unpriced models do neither: they cost nothing
 * and are never refused.
 */
import { DbUnavailableError, SPEND_LIMIT_MESSAGE } from '../../functions/core/errors';
import { fail, type RoomFailure } from '../../functions/core/room-api';
import { usageMeter, type Spend, type UsageMeterRpc } from '../../functions/core/usage-meter-api';
import type { ResolvedModel } from '../../functions/core/model-resolve';
import type { Message } from '../../functions/core/chats';
import { toMicros } from '../../functions/core/usage-cost';
import { log } from '../../functions/core/log';

export class Budget {
  /** Priced answers written and not yet reported to the meter. */
  private pending: Spend[] = [];
  /**
   * A priced answer's write was replayed and inserted nothing (the first attempt committed, its reply was lost): its
   * cost is in the ledger but not in hand, so the meter is told to read the ledger again.
   */
  private unsure = false;

  constructor(private readonly env: Env) {}

  /**
   * Null when a turn on `resolved` may call its model for `ownerId`; the 402 to answer when their limit is reached
   * (nothing may be stored then). Throws DbUnavailableError when the meter cannot read Postgres.
   */
  async refusal(ownerId: string, resolved: ResolvedModel): Promise<RoomFailure | null> {
    if (resolved.config.pricing === null) return null;
    const meter = usageMeter(this.env, ownerId);
    await this.resync(meter);
    // What this chat spent and has not reported yet travels with the question, so it counts in the answer.
    const verdict = await meter.check(ownerId, this.pending.splice(0));
    if (verdict.ok) return null;
    if (verdict.reason === 'unavailable') throw new DbUnavailableError('the spend meter cannot reach the database');
    return fail(402, SPEND_LIMIT_MESSAGE, verdict.resetsAt);
  }

  /**
   * A turn's ending is in Postgres: its priced answers wait to be reported (with the next check, or by `flush`).
   * `priced` says whether the ending had a cost to write.
   */
  spent(messages: readonly Message[], priced: boolean): void {
    let wrote = false;
    for (const m of messages) {
      const cost = m.usage?.cost;
      if (m.role !== 'assistant' || cost == null) continue;
      wrote = true;
      const micros = toMicros(cost);
      if (micros > 0n) this.pending.push({ day: m.created_at.slice(0, 10), micros: micros.toString() });
    }
    if (priced && !wrote) this.unsure = true;
  }

  /** A priced call that wrote no message (a title): its cost waits to be reported like an answer's. */
  charged(day: string, micros: string): void {
    if (BigInt(micros) > 0n) this.pending.push({ day, micros });
  }

  /** Tells the meter what it must hear before its next answer: the ledger holds an answer it was not told. */
  private async resync(meter: UsageMeterRpc): Promise<void> {
    if (!this.unsure) return;
    this.unsure = false;
    await meter.forget();
  }

  /**
   * Reports what is still pending, before the turn's end is published: a turn the user saw end is in their meter's
   * spend (the bound on concurrent turns counts only turns still running). A failed report is logged, not thrown:
   * the meter's next read of the ledger catches it up.
   */
  async flush(ownerId: string): Promise<void> {
    if (this.pending.length === 0 && !this.unsure) return;
    const spends = this.pending.splice(0);
    try {
      const meter = usageMeter(this.env, ownerId);
      await this.resync(meter);
      if (spends.length > 0) await meter.record(ownerId, spends);
    } catch (e) {
      log('warn', 'reporting spend to the meter failed', { error: String(e) });
    }
  }
}
