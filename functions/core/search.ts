/**
 * Search (docs/chats.md "Search"): the one query behind GET /chats/search, GET /chats?q= and the search_chats tool.
 * Here: the query text as Postgres should see it, the snippet as the API promises it, and the calls. The index and
 * its text rules live in sql/migrations/000013_search.up.sql; the statements in sql/queries/search.sql.
 */
import { z } from 'zod';
import type { Queryable } from './db';
import { toChat, type Chat } from './chats';
import { getChatsMatching, searchMessages } from '../../sql/generated/search.queries';
import type { SearchResult } from './shapes/search';

/** A run of Han, Hiragana or Katakana: written without spaces, indexed one character per token. */
const CJK_RUN = /[\u3040-\u30FF\u3400-\u4DBF\u4E00-\u9FFF\uF900-\uFAFF]+/gu;

/**
 * The query for websearch_to_tsquery: a run of CJK characters becomes a phrase of single characters, the way the
 * index holds it ("東京" → "東 京" inside quotes, `"東 京"` outside them), so a word of such a language matches as
 * written and not as scattered characters. Everything else is left to websearch_to_tsquery.
 */
export function normalizeQuery(q: string): string {
  let out = '';
  let inQuote = false;
  let last = 0;
  for (const m of q.matchAll(new RegExp(`"|${CJK_RUN.source}`, 'gu'))) {
    out += q.slice(last, m.index);
    last = m.index + m[0].length;
    if (m[0] === '"') {
      inQuote = !inQuote;
      out += '"';
      continue;
    }
    const spaced = m[0].replace(/(?<=.)(?=.)/gu, ' ');
    if (inQuote) {
      out += ` ${spaced} `;
    } else {
      const before = out.at(-1);
      const sep = before === undefined || before === '-' || /\s/u.test(before) ? '' : ' ';
      out += `${sep}"${spaced}" `;
    }
  }
  return out + q.slice(last);
}

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/**
 * ts_headline's output as the API's snippet: the separators the index put around CJK characters (U+E000) removed,
 * '<' and '>' restored from U+E003 and U+E004, everything HTML-escaped, then the match sentinels (U+E001, U+E002)
 * turned into <mark> and </mark> (adjacent marks merged). The stored text cannot forge a sentinel: the index's
 * text function removes U+E000..U+E004 first.
 */
export function snippetHtml(headline: string): string {
  const plain = headline.replace(/\uE000/gu, '').replace(/\uE003/gu, '<').replace(/\uE004/gu, '>');
  const escaped = plain.replace(/[&<>"']/gu, (ch) => ESCAPES[ch] ?? ch);
  return escaped.replace(/\uE002\uE001/gu, '').replace(/\uE001/gu, '<mark>').replace(/\uE002/gu, '</mark>').trim();
}

/** Rows of SearchMessages, parsed (DB output is outside input too). */
const Row = z.object({
  chat_id: z.string(),
  chat_title: z.string(),
  archived: z.boolean(),
  message_id: z.union([z.string(), z.number()]).transform(Number),
  role: z.enum(['user', 'assistant']),
  created_at: z.coerce.date().transform((d) => d.toISOString()),
  snippet: z.string(),
});

/** The caller's matching messages, best first, then newest: one statement. */
export async function searchChats(db: Queryable, userId: string, q: string, limit: number, offset: number): Promise<SearchResult[]> {
  const rows = await searchMessages.run({ user_id: userId, q: normalizeQuery(q), limit, offset }, db);
  return rows.map((r) => {
    const row = Row.parse(r);
    return { ...row, snippet: snippetHtml(row.snippet) };
  });
}

/** GET /chats?q=: the caller's chats whose title or live messages match, most recently active first. */
export async function listChatsMatching(
  db: Queryable,
  userId: string,
  q: string,
  shared: boolean,
  archived: boolean,
  limit: number,
  offset: number,
): Promise<Chat[]> {
  return (await getChatsMatching.run({ user_id: userId, q: normalizeQuery(q), shared, archived, limit, offset }, db)).map(toChat);
}

