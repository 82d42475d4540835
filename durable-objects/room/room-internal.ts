import type { RoomStats, SocketRevocation, TurnOutcome } from '../../functions/core/room-api';
import type { ChatStatus } from '../../functions/core/shapes/chat';
import { RoomBase } from './room-base';

/**
 * The chat object's internal RPC methods: the deployment calls them (the cron, credential revocation, sharing
 * changes, the scale test, tests), never on behalf of a request's user, so they take no actor (rule `internal` in
 * guard.ts). `ChatRoom` adds the users' methods.
 */
export abstract class RoomInternal extends RoomBase {
  /** Tells the stream's subscribers that the agent's context changed since the chat pinned it (best effort). */
  contextDirty(): Promise<void> {
    if (!this.state.gone) this.hub.publish([{ type: 'context_dirty', chat_id: this.chatId() }]);
    return Promise.resolve();
  }

  /** Closes, with 4401, the sockets opened with credentials that were just revoked; answers how many. */
  closeSockets(r: SocketRevocation): Promise<number> {
    const revoked = (keyId: string) => keyId !== r.exceptKeyId && (r.keyIds === 'all' || r.keyIds.includes(keyId));
    const n = this.hub.closeWhere((att) => att.userId === r.userId && revoked(att.keyId), 4401, 'credential revoked');
    if (!this.hub.watching(r.userId)) this.ctx.waitUntil(this.registry(r.userId).closed(this.chatId()));
    return Promise.resolve(n);
  }

  /** Access changed (grants, or a user's groups): sockets of users who lost it close with 4403; answers how many. */
  async accessChanged(user: { userId: string; groupIds: string[] } | null): Promise<number> {
    return await this.endLostAccess(user);
  }

  /** Drops the cached chat row (it was changed outside this object, e.g. by the auto-archive cron). */
  async refresh(): Promise<void> {
    await this.lock.run(() => {
      this.state.dropRow();
      return Promise.resolve();
    });
  }

  /** The chat was deleted in Postgres (retention): stop work, close sockets, forget everything. */
  async purge(): Promise<void> {
    await this.lock.run(() => this.forgetAll());
  }

  /** Cache and fan-out counters (for the scale test and the owners' metrics route). */
  stats(): Promise<RoomStats> {
    return Promise.resolve({
      ...this.state.counters,
      sockets: this.hub.count,
      cached: this.state.cache.size,
      cachedBytes: this.state.cache.bytes,
      compactions: this.runner.compactions,
      outbox: this.outbox.size,
    });
  }

  /** The last finished turn's outcome: reused by tests. */
  outcome(): Promise<TurnOutcome | null> {
    return Promise.resolve(this.turns.lastOutcome);
  }

  /** Resolves when no turn (nor a title job started by one) is running (tests, the scale test's shutdown); the status. */
  async idle(): Promise<ChatStatus | null> {
    // A turn's ending is written under the lock (and may start the next queued turn): look after each lock pass.
    do {
      await this.turns.current?.call;
      await this.lock.run(() => Promise.resolve());
      await this.titles.settled();
    } while (this.turns.current);
    return await this.lock.run(async () => (await this.loadChat())?.status ?? null);
  }
}
