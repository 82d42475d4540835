/** Search (docs/chats.md "Search"): the query parameters and the result, each written once. */
import { z } from '@hono/zod-openapi';

/** Longest accepted `q`, in characters. */
export const MAX_QUERY_LENGTH = 1000;

/** `q`: web-search syntax, non-empty after trimming, at most 1,000 characters. */
export const SearchQueryText = z
  .string()
  .trim()
  .min(1, { message: 'must not be empty: give words to search for' })
  .max(MAX_QUERY_LENGTH, { message: `must be at most ${MAX_QUERY_LENGTH} characters` })
  .openapi({ description: 'Web-search syntax: words, "a phrase", -word, or', example: 'postgres "full text" -mysql' });

export const SearchQuery = z.object({
  q: SearchQueryText,
  limit: z.coerce.number().int().min(1).max(100).default(20),
  offset: z.coerce.number().int().min(0).max(10_000).default(0),
});

export const SearchResult = z
  .object({
    chat_id: z.uuid(),
    chat_title: z.string(),
    archived: z.boolean(),
    message_id: z.number().int(),
    role: z.enum(['user', 'assistant']),
    snippet: z.string().openapi({
      description: 'Plain text with each match wrapped in <mark> and </mark>; everything else HTML-escaped',
    }),
    created_at: z.iso.datetime(),
  })
  .openapi('SearchResult');
export type SearchResult = z.infer<typeof SearchResult>;

export const SearchResults = z.object({ results: z.array(SearchResult) }).openapi('SearchResults');
export type SearchResults = z.infer<typeof SearchResults>;
