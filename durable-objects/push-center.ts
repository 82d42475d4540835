import { DurableObject } from 'cloudflare:workers';
import { dbSettings, settings } from '../functions/core/settings';
import { Db } from '../functions/core/db';
import { keyRing } from '../functions/core/keyring';
import { SubscriptionCache, type CacheStats } from './push/subscription-cache';
import { SlidingWindow, type WindowAnswer } from './lib/sliding-window';
import { MAX_SUBSCRIPTIONS, TEST_LIMIT, TEST_WINDOW_MS, vapidKeys, type Subscription, type Vapid } from '../functions/core/webpush';
import { GONE, sendPush, type Notification } from './push/send';
import {
  deleteWebpushSubscription,
  deleteWebpushSubscriptionById,
  getAllWebpushSubscriptionsByUserId,
  getWebpushSubscriptionsByUserId,
  lockWebpushSubscriber,
  setWebpushEnabled,
  upsertWebpushSubscriptionCapped,
} from '../sql/generated/webpush.queries';
import { log } from '../functions/core/log';


export interface DispatchReport {
  sent: number;
  removed: number;
  failed: number;
}

/**
 * One object per user (`push-<userId>`): their subscriptions' cache, and every change to them. Because
 * subscribe, unsubscribe and dispatch all go through this object, invalidation is exact across the whole
 * deployment (no per-isolate copies to go stale); the generation guard covers a fetch still in flight when a
 * change lands.
 */
export class PushCenter extends DurableObject<Env> {
  private dbConn: Db | null = null;
  private vapid: Promise<Vapid> | null = null;
  private readonly tests = new SlidingWindow(TEST_LIMIT, TEST_WINDOW_MS);
  private readonly cache = new SubscriptionCache<Subscription>((userId) =>
    getWebpushSubscriptionsByUserId.run({ user_id: userId }, this.db),
  );

  private get db(): Db {
    this.dbConn ??= new Db(dbSettings(this.env, { durable: true }));
    return this.dbConn;
  }

  private async keys(): Promise<Vapid> {
    this.vapid ??= keyRing(this.env.PROVIDER_KEY_ENCRYPTION_KEY).then((ring) => vapidKeys(this.db, ring));
    try {
      return await this.vapid;
    } catch (e) {
      this.vapid = null;
      throw e;
    }
  }

  /** Adds (or updates) a subscription; false when the user already has MAX_SUBSCRIPTIONS others. */
  async subscribe(userId: string, s: { endpoint: string; p256dh_key: string; auth_key: string }): Promise<boolean> {
    this.cache.invalidate(userId);
    const rows = await this.db.inTx(async (tx) => {
      await lockWebpushSubscriber.run({ user_id: userId }, tx);
      return await upsertWebpushSubscriptionCapped.run(
        { user_id: userId, endpoint: s.endpoint, p256dh: s.p256dh_key, auth: s.auth_key, max: MAX_SUBSCRIPTIONS },
        tx,
      );
    });
    this.cache.invalidate(userId);
    return rows.length > 0;
  }

  async unsubscribe(userId: string, endpoint: string): Promise<boolean> {
    this.cache.invalidate(userId);
    const rows = await deleteWebpushSubscription.run({ user_id: userId, endpoint }, this.db);
    this.cache.invalidate(userId);
    return rows.length > 0;
  }

  async setEnabled(userId: string, enabled: boolean): Promise<boolean> {
    this.cache.invalidate(userId);
    const [row] = await setWebpushEnabled.run({ user_id: userId, enabled }, this.db);
    this.cache.invalidate(userId);
    return row?.webpush_enabled ?? enabled;
  }

  /** Sends to the user's subscriptions (none when they opted out); gone endpoints are deleted. */
  async dispatch(userId: string, n: Notification): Promise<DispatchReport> {
    const subs = await this.cache.get(userId);
    return await this.send(userId, subs, n);
  }

  /**
   * A test notification, to every subscription of the user (opted out or not), bypassing the cache. Rate-limited
   * (this object is the user's only one, so the window is exact): a client cannot make the server post in a loop.
   */
  async sendTest(userId: string, n: Notification): Promise<{ ok: true; report: DispatchReport } | Extract<WindowAnswer, { ok: false }>> {
    const allowed = this.tests.hit();
    if (!allowed.ok) return allowed;
    return { ok: true, report: await this.send(userId, await getAllWebpushSubscriptionsByUserId.run({ user_id: userId }, this.db), n) };
  }

  cacheStats(): CacheStats {
    return { ...this.cache.stats };
  }

  private async send(userId: string, subs: Subscription[], n: Notification): Promise<DispatchReport> {
    const report: DispatchReport = { sent: 0, removed: 0, failed: 0 };
    if (subs.length === 0) return report;
    const vapid = await this.keys();
    const contact = settings(this.env).WEBPUSH_CONTACT;
    await Promise.all(
      subs.map(async (s) => {
        const status = await sendPush(s, n, vapid, contact);
        if (status >= 200 && status < 300) report.sent += 1;
        else if (GONE.has(status)) {
          await deleteWebpushSubscriptionById.run({ id: s.id }, this.db);
          report.removed += 1;
        } else {
          report.failed += 1;
          // Logged, never retried: the next turn's notification is the retry.
          log('warn', 'web push failed', { status, host: new URL(s.endpoint).host });
        }
      }),
    );
    if (report.removed > 0) this.cache.invalidate(userId);
    return report;
  }
}
