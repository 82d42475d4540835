/** Typed access to the Durable Objects from Worker code. */
import type { AuthDirectory } from '../../durable-objects/auth-directory';
import { shardFor } from '../../durable-objects/auth-directory';
import type { ChatRoom } from '../../durable-objects/chat-room';
import { settings } from '../env';

type RoomMethod =
  | 'create'
  | 'postMessage'
  | 'editMessage'
  | 'interrupt'
  | 'listQueue'
  | 'deleteQueued'
  | 'promoteQueued'
  | 'purge'
  | 'stats'
  | 'idle'
  | 'outcome'
  | 'fetch'
  | 'chatRow'
  | 'updateMeta'
  | 'deleteChat'
  | 'refresh';

/** The RPC surface of a ChatRoom with its declared result types (plain data, which RPC carries as-is). */
export type Room = { [K in RoomMethod]: (...args: Parameters<ChatRoom[K]>) => Promise<Awaited<ReturnType<ChatRoom[K]>>> };

/** The chat's Durable Object. */
export function room(env: Env, chatId: string): Room {
  return env.CHAT_ROOM.getByName(chatId);
}

type DirectoryMethod = 'authenticate' | 'revoke' | 'forget' | 'forgetKeys' | 'forgetUser';
export type Directory = {
  [K in DirectoryMethod]: (...args: Parameters<AuthDirectory[K]>) => Promise<Awaited<ReturnType<AuthDirectory[K]>>>;
};

/** The AuthDirectory shard that owns a key id, for the database this Worker serves. */
export function directory(env: Env, keyId: string): { db: string; shard: Directory } {
  const db = settings(env).DATABASE_URL;
  return { db, shard: env.AUTH_DIRECTORY.getByName(shardFor(db, keyId)) };
}
