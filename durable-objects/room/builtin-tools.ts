/**
 * Built-in tools: offered to the model beside the MCP servers' tools, with the same approval modes. `search_chats`
 * (enabled per model config by `options.search_chats`, its approval mode) searches the chats the chat's owner can read
 * with the query behind GET /chats/search, and answers the best 5 snippets with their chats' titles. A turn that does
 * not call it costs no statement: the tool's offer comes from the resolved model config the turn already holds.
 */
import { z } from 'zod';
import type { Db } from '../../functions/core/db';
import { searchChats } from '../../functions/core/search';
import type { ToolApproval } from '../../functions/core/shapes/tools';
import type { ToolCallPart, ToolResultPart } from '../../functions/core/chats';
import { errorResult } from '../llm/tools';

export const SEARCH_CHATS = 'search_chats';
/** The snippets the tool answers. */
export const SEARCH_TOOL_RESULTS = 5;

export interface BuiltinTool {
  kind: typeof SEARCH_CHATS;
  /** Whose chats it searches: the chat's owner. */
  ownerId: string;
}

export const searchChatsTool = {
  name: SEARCH_CHATS,
  description:
    "Searches the user's past chats (the text of user and assistant messages) and answers the best 5 matches, each with its chat's title, " +
    'the role and date of the message, and a snippet. Query syntax: words (all must match), "a phrase", -word to exclude, or.',
  inputSchema: {
    type: 'object',
    properties: { query: { type: 'string', description: 'What to look for (web-search syntax)', minLength: 1, maxLength: 1000 } },
    required: ['query'],
    additionalProperties: false,
  },
};

/** The tool's offer under a model config's `options.search_chats` (absent: not offered). */
export function builtinDefs(approval: ToolApproval | undefined, ownerId: string): { approval: ToolApproval; builtin: BuiltinTool }[] {
  return approval === undefined ? [] : [{ approval, builtin: { kind: SEARCH_CHATS, ownerId } }];
}

const SearchArgs = z.object({ query: z.string().trim().min(1).max(1000) }).strict();

/** A snippet as plain text for the model: the marks become «…», the escapes their characters. */
function plainSnippet(html: string): string {
  return html
    .replace(/<mark>/g, '«')
    .replace(/<\/mark>/g, '»')
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&quot;/g, '"')
    .replace(/&#39;/g, "'")
    .replace(/&amp;/g, '&');
}

/** Runs a built-in tool's call; bad arguments become an error result the model sees. */
export async function runBuiltin(db: Db, tool: BuiltinTool, c: ToolCallPart): Promise<ToolResultPart> {
  const args = SearchArgs.safeParse(c.args);
  if (!args.success) {
    return { type: 'tool_result', tool_call_id: c.tool_call_id, name: c.name, result: errorResult('search_chats takes {"query": "<1 to 1000 characters>"}.'), is_error: true };
  }
  const found = await searchChats(db, tool.ownerId, args.data.query, SEARCH_TOOL_RESULTS, 0);
  const results = found.map((r) => ({
    chat_title: r.chat_title,
    chat_id: r.chat_id,
    message_id: r.message_id,
    role: r.role,
    created_at: r.created_at,
    snippet: plainSnippet(r.snippet),
  }));
  const text =
    results.length === 0
      ? `No message matches ${JSON.stringify(args.data.query)}.`
      : results.map((r) => `${r.chat_title} (${r.role}, ${r.created_at.slice(0, 10)}): ${r.snippet}`).join('\n');
  return { type: 'tool_result', tool_call_id: c.tool_call_id, name: c.name, result: { content: [{ type: 'text', text }], structuredContent: { results } }, is_error: false };
}
