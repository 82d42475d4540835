/**
 * A turn's writes when Postgres may not take them: a write goes to Postgres, or into the outbox (the object's own
 * storage) behind the writes already waiting there, to be retried with backoff from the alarm until it commits. While
 * writes wait, the chat shows `running` with `database_unavailable`; past OUTBOX_GIVE_UP_MS it shows `error`, and the
 * writes are still applied when Postgres answers again. Each entry carries its turn's idempotency key, so a replay
 * after a lost commit reply changes nothing.
 */
import { isTransient, pgErrorCode } from '../../functions/core/db';
import type { LastError } from '../../functions/core/chats';
import { log } from '../../functions/core/log';
import type { AlarmClock } from './alarm-clock';
import type { ChatState } from './chat-state';
import type { ChatStore } from './chat-store';
import type { Written } from './written';
import type { Outbox } from './outbox';
import type { StreamHub } from './stream-hub';
import type { FinishEntry } from './turn';

/** Retries of writes waiting in the outbox: 250 ms, doubling, at most every 3 s; once given up, every minute. */
const RETRY_FIRST_MS = 250;
const RETRY_MAX_MS = 3_000;
const RETRY_AFTER_GIVE_UP_MS = 60_000;
const DB_GAVE_UP: LastError = {
  kind: 'database_unavailable',
  message: 'The database has been unavailable for too long: the answer is kept and will be saved when it answers again.',
};

/** Who hears about a write once it is in Postgres (the turn lifecycle: it publishes it and goes on). */
export interface WriteListener {
  /** `entry` is in Postgres as `w`; `last` when nothing waits in the outbox any more. */
  written(entry: FinishEntry, w: Written, last: boolean): Promise<void>;
  /** The chat was deleted under the write: nothing is kept. */
  chatGone(): Promise<void>;
}

export interface OutboxWriterDeps {
  chatId: () => string;
  store: ChatStore;
  outbox: Outbox;
  state: ChatState;
  hub: StreamHub;
  clock: AlarmClock;
  /** OUTBOX_GIVE_UP_MS */
  giveUpMs: number;
}

export class OutboxWriter {
  constructor(private readonly deps: OutboxWriterDeps) {}

  /** Writes waiting for Postgres. */
  get size(): number {
    return this.deps.outbox.size;
  }

  /**
   * A turn's write: in Postgres now (answered), or kept in the outbox and retried (null; the listener hears of it once
   * it is written). Writes keep their order: with writes waiting, this one goes behind them and they are tried now.
   */
  async write(entry: FinishEntry, to: WriteListener): Promise<Written | null> {
    if (this.size > 0) {
      this.keep(entry);
      await this.drain(to).catch((e: unknown) => {
        if (!isTransient(e)) throw e;
      });
      return null;
    }
    try {
      return await this.deps.store.finish(entry);
    } catch (e) {
      if (pgErrorCode(e) === '23503') {
        await to.chatGone();
        return null;
      }
      // Whatever went wrong, the answer is kept and retried: a write Postgres refuses for good is dropped (and logged)
      // by the drain, never here on a first failure.
      if (!isTransient(e)) log('error', 'writing a turn ending failed', { chat_id: this.deps.chatId(), error: String(e) });
      this.keep(entry);
      return null;
    }
  }

  /**
   * Applies the outbox in order; an entry leaves it only once Postgres committed it. Throws when Postgres still cannot
   * take them (the alarm tries again).
   */
  async drain(to: WriteListener): Promise<void> {
    const { outbox, state, store } = this.deps;
    if (outbox.size === 0) return;
    for (const item of outbox.all()) {
      let w: Written;
      try {
        w = await store.finish(item.entry);
      } catch (e) {
        if (pgErrorCode(e) === '23503') {
          await to.chatGone();
          return;
        }
        if (isTransient(e)) {
          outbox.failed(item.seq);
          throw e;
        }
        // Postgres refuses it for good (it could never be applied): keep going with the rest.
        log('error', 'dropping an outbox entry Postgres refuses', { chat_id: this.deps.chatId(), error: String(e) });
        outbox.remove(item.seq);
        continue;
      }
      outbox.remove(item.seq);
      const last = outbox.size === 0;
      if (last) {
        state.held = null;
        state.dropSnapshot();
      }
      await to.written(item.entry, w, last);
    }
  }

  /** Schedules the next try with backoff; past the give-up time the chat is shown as `error`. */
  retryLater(): void {
    const [first] = this.deps.outbox.all();
    if (!first) return;
    const { state, hub } = this.deps;
    const now = Date.now();
    const givenUp = now - first.createdAt >= this.deps.giveUpMs;
    if (givenUp && state.loaded && state.loaded.status !== 'error') {
      state.show({ status: 'error', last_error: DB_GAVE_UP });
      hub.publish([{ type: 'error', chat_id: this.deps.chatId(), error: DB_GAVE_UP }, state.statusEvent()]);
    }
    const delay = givenUp ? RETRY_AFTER_GIVE_UP_MS : Math.min(RETRY_MAX_MS, RETRY_FIRST_MS * 2 ** first.attempts);
    this.deps.clock.by(now + delay);
  }

  /** Postgres could not take a write: keep it in the outbox, show it, and retry with backoff. */
  private keep(entry: FinishEntry): void {
    const { state, hub, outbox } = this.deps;
    outbox.push(entry);
    state.held = entry;
    if (state.loaded) {
      state.snapshot();
      state.patch({});
      hub.publish([state.statusEvent()]);
    }
    log('warn', 'turn ending kept in the outbox until the database answers', { chat_id: this.deps.chatId() });
    this.retryLater();
  }
}
