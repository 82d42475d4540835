/**
 * The chat object's side of spend limits. Before a turn on a priced model calls it, the chat's owner's meter (one
 * `UsageMeter` per user: durable-objects/usage-meter.ts) says whether they are still below their limit; once a
 * priced answer is written, the meter is told what it cost. Turns on unpriced models do neither: they cost nothing
 * and are never refused.
 */
import { DbUnavailableError, SPEND_LIMIT_MESSAGE } from '../../functions/lib/errors';
import { fail, type RoomFailure } from '../../functions/lib/room-api';
import { usageMeter, type Spend } from '../../functions/lib/usage-meter-api';
import type { ResolvedModel } from '../../functions/services/chat-models';
import type { Message } from '../../functions/services/chats';
import { toMicros } from '../../functions/services/usage-cost';

export class Budget {
  /** Priced answers written and not yet reported to the meter. */
  private pending: Spend[] = [];
  /** The last report in flight (for `idle()`: tests read the meter after a turn). */
  private reporting: Promise<void> = Promise.resolve();

  constructor(
    private readonly env: Env,
    private readonly ctx: DurableObjectState,
  ) {}

  /**
   * Null when a turn on `resolved` may call its model for `ownerId`; the 402 to answer when their limit is reached
   * (nothing may be stored then). Throws DbUnavailableError when the meter cannot read Postgres.
   */
  async refusal(ownerId: string, resolved: ResolvedModel): Promise<RoomFailure | null> {
    if (resolved.config.pricing === null) return null;
    // What this chat spent and has not reported yet travels with the question, so it counts in the answer.
    const verdict = await usageMeter(this.env, ownerId).check(ownerId, this.pending.splice(0));
    if (verdict.ok) return null;
    if (verdict.reason === 'unavailable') throw new DbUnavailableError('the spend meter cannot reach the database');
    return fail(402, SPEND_LIMIT_MESSAGE, verdict.resetsAt);
  }

  /** A turn's ending is in Postgres: its priced answers wait to be reported (with the next check, or by `flush`). */
  spent(messages: readonly Message[]): void {
    for (const m of messages) {
      const cost = m.usage?.cost;
      if (m.role !== 'assistant' || cost == null) continue;
      const micros = toMicros(cost);
      if (micros > 0n) this.pending.push({ day: m.created_at.slice(0, 10), micros: micros.toString() });
    }
  }

  /** Reports what is still pending, in the background (a lost report is caught up by the meter's next read). */
  flush(ownerId: string): void {
    if (this.pending.length === 0) return;
    const spends = this.pending.splice(0);
    this.reporting = usageMeter(this.env, ownerId)
      .record(ownerId, spends)
      .catch((e: unknown) => {
        console.error(JSON.stringify({ level: 'warn', msg: 'reporting spend to the meter failed', error: String(e) }));
      });
    this.ctx.waitUntil(this.reporting);
  }

  /** Resolves once the reports sent so far have reached the meter (or failed). */
  async settled(): Promise<void> {
    await this.reporting;
  }
}
