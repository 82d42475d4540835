/** The Worker-side list of a user's chats (the one chat read that no chat object answers). */
import type { Queryable } from '../core/db';
import { toChat, type Chat } from '../core/chats';
import { getChatsByOwner } from '../../sql/generated/chats.queries';

export async function listChats(db: Queryable, ownerId: string, archived: boolean, limit: number, offset: number): Promise<Chat[]> {
  return (await getChatsByOwner.run({ owner_id: ownerId, archived, limit, offset }, db)).map(toChat);
}
