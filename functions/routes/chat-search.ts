/** GET /chats/search (docs/chats.md "Search"); mounted before /chats/{id}. */
import { createRoute } from '@hono/zod-openapi';
import { authorize } from '../authz';
import { errorResponses, jsonResponse, router } from '../lib/openapi';
import { searchChats } from '../core/search';
import { SearchQuery, SearchResults } from '../core/shapes/search';

const app = router().openapi(
  createRoute({
    method: 'get',
    path: '/search',
    summary: 'Search the messages of the chats you can read: best match first, then newest',
    middleware: authorize('self'),
    request: { query: SearchQuery },
    responses: { 200: jsonResponse(SearchResults, 'Matching messages, with snippets'), ...errorResponses(400, 401, 503) },
  }),
  async (c) => {
    const { q, limit, offset } = c.req.valid('query');
    return c.json({ results: await searchChats(c.var.db, c.var.actor.userId, q, limit, offset) }, 200);
  },
);

export default app;
