/**
 * A chat's pinned copy of its agent's context: taken at creation and on re-pin (in the caller's transaction), and
 * rendered into the system prompt within its share of the model's context.
 */
import { z } from 'zod';
import type { Queryable } from '../../functions/core/db';
import { EMPTY_AGGREGATE_HASH } from '../../functions/core/context-hash';
import { lockWorkspaceAgentForShare } from '../../sql/generated/agents.queries';
import { deleteChatContextResources, pinAgentContextToChat } from '../../sql/generated/chat_context.queries';

/**
 * Inside the caller's transaction: replaces the chat's pinned copy with the agent's current set and stamps the
 * agent's aggregate hash on the chat (clearing its dirty mark). Null when the agent does not exist.
 * The agent's row is locked FOR SHARE first, in its own statement, so a concurrent push either commits before
 * the copy (which then sees it) or waits until this transaction ends (and then marks the chat dirty).
 */
export async function pinAgentContext(tx: Queryable, chatId: string, agentId: string, opts: { replace: boolean }): Promise<{ pinned: number; aggregateHash: string } | null> {
  const [locked] = await lockWorkspaceAgentForShare.run({ id: agentId }, tx);
  if (!locked) return null;
  if (opts.replace) await deleteChatContextResources.run({ chat_id: chatId }, tx);
  const [row] = await pinAgentContextToChat.run({ chat_id: chatId, workspace_agent_id: agentId, empty_hash: EMPTY_AGGREGATE_HASH }, tx);
  if (!row) throw new Error('the chat row to pin to is missing');
  return { pinned: row.pinned, aggregateHash: row.aggregate_hash };
}

/** The share of the model's context_limit the pinned context may take in the system prompt. */
export const CONTEXT_BUDGET_SHARE = 0.25;
const CHARS_PER_TOKEN = 4;
/**
 * The most text a chat's object keeps of its pinned context: 1M characters (~2 MiB), a 1M-token model's 25% budget.
 * With the message cache's 6 MiB, a chat's object holds about 8 MiB at most.
 */
export const MAX_CACHED_CONTEXT_CHARS = 1_000_000;
const MAX_LISTED_SKIPPED = 20;

export interface PromptContextItem {
  source: string;
  kind: 'instruction_file' | 'skill';
  /** Null: not kept in memory (beyond MAX_CACHED_CONTEXT_CHARS); it is always skipped. */
  text: string | null;
}

const BodyText = z.union([
  z.string(),
  z.looseObject({ text: z.string() }).transform((o) => o.text),
  z.looseObject({ content: z.string() }).transform((o) => o.content),
]);

/** The text of an instruction_file or skill body: a JSON string, or an object with a `text` or `content` string. */
export function bodyText(body: unknown): string | null {
  const r = BodyText.safeParse(body);
  return r.success ? r.data : null;
}

const PromptRow = z.object({ source: z.string(), body_kind: z.enum(['instruction_file', 'skill']), body: z.unknown() });

/** Rows of GetChatPromptContext (already ordered) as items, keeping at most MAX_CACHED_CONTEXT_CHARS of text. */
export function promptContextItems(rows: readonly unknown[]): PromptContextItem[] {
  let kept = 0;
  const out: PromptContextItem[] = [];
  for (const raw of rows) {
    const r = PromptRow.parse(raw);
    const text = bodyText(r.body);
    if (text === null || !text.trim()) continue;
    const fits = kept + text.length <= MAX_CACHED_CONTEXT_CHARS;
    if (fits) kept += text.length;
    out.push({ source: r.source, kind: r.body_kind, text: fits ? text : null });
  }
  return out;
}

const attr = (s: string) => s.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/**
 * The system-prompt section for the pinned context: one `<context source=".." kind="..">` block per item, in
 * the given order, until the next block would take the section past CONTEXT_BUDGET_SHARE of the model's
 * context (estimated at 4 characters a token); the ones left out are named in a final line. Empty when none.
 */
export function renderPromptContext(items: readonly PromptContextItem[], contextLimit: number): string {
  const budgetChars = Math.floor(contextLimit * CONTEXT_BUDGET_SHARE * CHARS_PER_TOKEN);
  const blocks: string[] = [];
  let used = 0;
  let i = 0;
  for (; i < items.length; i++) {
    const item = items[i];
    if (!item || item.text === null) break;
    const block = `<context source="${attr(item.source)}" kind="${item.kind}">\n${item.text}\n</context>`;
    const cost = block.length + (blocks.length ? 2 : 0);
    if (used + cost > budgetChars) break;
    blocks.push(block);
    used += cost;
  }
  const skipped = items.slice(i).map((s) => s.source);
  if (skipped.length) {
    const named = skipped.slice(0, MAX_LISTED_SKIPPED).join(', ');
    const more = skipped.length > MAX_LISTED_SKIPPED ? ` and ${skipped.length - MAX_LISTED_SKIPPED} more` : '';
    blocks.push(`(Pinned context left out for lack of room: ${named}${more}.)`);
  }
  return blocks.join('\n\n');
}
