import type { Chat, Message, UsableModel } from '@chatd-edge/sdk';
import { client } from './api';

/** Messages per REST page: the newest page opens the chat, older ones come on demand (a 1,000-message chat opens fast). */
export const PAGE = 50;
/** `before_id` larger than any message id: "the newest page". */
const NEWEST = Number.MAX_SAFE_INTEGER;

type Opening = Promise<[Chat, { messages: Message[] }]>;
const early = new Map<string, Opening>();

const load = (id: string, known?: Chat): Opening =>
  Promise.all([known ?? client.getChat(id), client.listMessages(id, { before_id: NEWEST, limit: PAGE })]);

/**
 * Starts reading a chat and its newest page at once, when the page is opened on a chat's URL (the reads then run
 * beside the session check and the chat view's chunk) or its link in the list is clicked (`known`: the list's row,
 * so only the page is read; the stream's first status corrects a status that changed since).
 */
export function prefetchChat(id: string, known?: Chat): void {
  // A click on the chat already open changes nothing: no read, and nothing left behind to go stale.
  if (early.has(id) || (known && location.pathname === `/chats/${id}`)) return;
  const p = load(id, known);
  p.catch(() => undefined); // whoever takes it sees the error
  early.set(id, p);
}

/** The chat and its newest page: the prefetched reads when there are some (once), else new ones. */
/**
 * A chat opened at a message (a search result): the page around it (`around`), then every newer page, so the history
 * is contiguous up to the newest message and the stream resumes from there.
 */
export async function openChatAt(id: string, messageId: number): Opening {
  const [chat, first] = await Promise.all([client.getChat(id), client.messagesAround(id, messageId, PAGE)]);
  const messages = [...first];
  for (let page = first; page.length > 0; ) {
    const last = page.at(-1);
    if (!last) break;
    page = (await client.listMessages(id, { after_id: last.id, limit: 200 })).messages;
    messages.push(...page);
  }
  return [chat, { messages }];
}

export function openChat(id: string): Opening {
  const p = early.get(id);
  early.delete(id);
  return p ?? load(id);
}

let models: Promise<UsableModel[]> | null = null;
/** The models the user may pick (`GET /chats/models`), read once per page load; a failure is read again next time. */
export function usableModels(): Promise<UsableModel[]> {
  models ??= client.listModels().catch((e: unknown) => {
    models = null;
    throw e;
  });
  return models;
}
