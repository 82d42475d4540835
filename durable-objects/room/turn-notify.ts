/**
 * The push after a turn: it reuses what the turn already has (final text, chat title, owner) instead of
 * re-reading the last message or re-resolving the model, and it runs after the status is published, in the
 * background: it never delays or fails the turn.
 */
import { settings } from '../../functions/core/settings';
import { pushCenterName } from '../../functions/core/webpush';
import { notificationBody } from '../push/send';
import { log } from '../../functions/core/log';

export interface TurnEnd {
  chatId: string;
  ownerId: string;
  title: string;
  finalText: string;
  failed: boolean;
  /** Whether the owner has this chat's stream open now. */
  ownerWatching: boolean;
}

export async function notifyTurnEnd(env: Env, t: TurnEnd): Promise<void> {
  if (t.ownerWatching && settings(env).WEBPUSH_SKIP_WHEN_WATCHING) return;
  try {
    await env.PUSH_CENTER.getByName(pushCenterName(t.ownerId)).dispatch(t.ownerId, {
      title: t.title || 'Chat',
      body: notificationBody(t.finalText, t.failed),
      data: { url: `/chats/${t.chatId}`, chat_id: t.chatId },
    });
  } catch (e) {
    log('warn', 'turn notification failed', { chat_id: t.chatId, error: String(e) });
  }
}
