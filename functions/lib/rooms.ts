/**
 * The Worker reaches Durable Objects through their binding types only (`Env`), never by importing them: objects
 * depend on shared modules, and shared modules never depend on objects.
 */
import { shardFor } from '../core/key-shards';
import { ApiError } from '../core/errors';
import type { ChatRoomRpc, RoomResult } from '../core/room-api';
import { settings } from '../core/settings';

/** The chat's Durable Object, typed by the RPC surface it implements. */
export function room(env: Env, chatId: string): ChatRoomRpc {
  return env.CHAT_ROOM.getByName(chatId);
}

/** The AuthDirectory shard that owns a key id, for the database this Worker serves. */
export function directory(env: Env, keyId: string) {
  const db = settings(env).DATABASE_URL;
  return { db, shard: env.AUTH_DIRECTORY.getByName(shardFor(db, keyId)) };
}

/** A chat object's answer, or the ApiError it stands for. */
export function unwrap<T>(r: RoomResult<T>): T {
  if (r.ok) return r.value;
  throw new ApiError(r.status, r.message, r.detail);
}
