import { OpenAPIHono } from '@hono/zod-openapi';
import { HTTPException } from 'hono/http-exception';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { dbSettings, type AppEnv } from './env';
import { bodyGuard } from './lib/body-guard';
import { Db } from './core/db';
import { ApiError, DbUnavailableError, type ErrorBody } from './core/errors';
import agents from './routes/agents';
import chatContext from './routes/chat-context';
import chatModelConfigs from './routes/chat-model-configs';
import chatProviders from './routes/chat-providers';
import chatConfig from './routes/chat-config';
import chatTools from './routes/chat-tools';
import mcpServers from './routes/mcp-servers';
import chatStream from './routes/chat-stream';
import chats from './routes/chats';
import files from './routes/files';
import chatSearch from './routes/chat-search';
import chatSharing from './routes/chat-sharing';
import groups from './routes/groups';
import shared from './routes/shared';
import chatConversation from './routes/chat-conversation';
import health from './routes/health';
import userAdmin from './routes/user-admin';
import spendLimits from './routes/spend-limits';
import usage from './routes/usage';
import operations from './routes/operations';
import userCredentials from './routes/user-credentials';
import users from './routes/users';
import auth from './routes/auth';
import auditLog from './routes/audit';
import { mine as myWebpush, vapid } from './routes/webpush';
import { streamComponents } from './core/shapes/stream';
import { log } from './core/log';

const UNAVAILABLE: ErrorBody = {
  message: 'The database is unavailable. Try again shortly.',
};

/**
 * Errors thrown inside a Durable Object reach the Worker over RPC as plain Errors with the same message;
 * a database outage there is still a 503.
 */
function isRemoteDbUnavailable(e: unknown): boolean {
  return e instanceof Error && /^(DbUnavailableError: )?database unavailable:/.test(e.message);
}

/** The OpenAPI document's head; the rest is generated from the routes and `functions/core/shapes`. */
export const OPENAPI_CONFIG: Parameters<OpenAPIHono['getOpenAPI31Document']>[0] = {
  openapi: '3.1.0',
  info: {
    title: 'chatd-edge API',
    version: '2.0.0',
    description: 'Multi-user LLM chat backend. Authenticate with `Authorization: Bearer <token>` or the `session_token` cookie.',
  },
  security: [{ bearer: [] }, { cookie: [] }],
};

/** Builds the Hono app: middleware, error mapping, routes, and the OpenAPI document. */
export function createApp(): OpenAPIHono<AppEnv> {
  const app = new OpenAPIHono<AppEnv>();

  // One lazily opened connection per request, closed after the response.
  app.use('*', async (c, next) => {
    const db = new Db(dbSettings(c.env));
    c.set('db', db);
    try {
      await next();
    } finally {
      const closing = db.close();
      try {
        c.executionCtx.waitUntil(closing);
      } catch {
        await closing; // no execution context (app.request in unit tests)
      }
    }
  });

  // Bodies are bounded and checked before any route (or its authentication) reads them.
  app.use('*', bodyGuard);

  app.onError((e, c) => {
    if (e instanceof ApiError) {
      if (e.status >= 500) log('error', e.message, { path: c.req.path });
      return c.json(e.body(), e.status, e.headers);
    }
    if (e instanceof DbUnavailableError || isRemoteDbUnavailable(e)) {
      const reason = e instanceof DbUnavailableError ? e.reason : e instanceof Error ? e.message : String(e);
      log('error', 'database unavailable', { reason, path: c.req.path });
      return c.json(UNAVAILABLE, 503);
    }
    if (e instanceof HTTPException) {
      const status: ContentfulStatusCode = e.status;
      const message =
        e.status === 415
          ? 'The request body must be JSON (Content-Type: application/json).'
          : e.status === 400
            ? 'The request body is not valid JSON.'
            : e.message || 'Request failed.';
      return c.json({ message } satisfies ErrorBody, status);
    }
    // Request input is validated by the routes' hooks, which throw ApiError (400). A ZodError reaching this point
    // comes from parsing something of ours (a database row, an RPC answer): an internal error, whose issues name
    // internal fields, so it gets the generic 500 like any other.
    log('error', 'unhandled error', { path: c.req.path, method: c.req.method, error: e instanceof Error ? `${e.name}: ${e.message}` : String(e) });
    return c.json({ message: 'An internal error occurred.' } satisfies ErrorBody, 500);
  });

  app.notFound((c) => c.json({ message: `No route for ${c.req.method} ${c.req.path}.` } satisfies ErrorBody, 404));

  app.route('/', health);
  app.route('/api/v2', usage);
  app.route('/api/v2', operations);
  app.route('/api/v2', spendLimits);
  app.route('/api/v2/users/me/webpush', myWebpush);
  app.route('/api/v2/users', users);
  app.route('/api/v2/users', userCredentials);
  app.route('/api/v2/users', userAdmin);
  app.route('/api/v2/webpush', vapid);
  // Static /chats/* resources before /chats/{id}, so they are never taken for a chat id.
  app.route('/api/v2/chats', chatProviders);
  app.route('/api/v2/chats', chatModelConfigs);
  app.route('/api/v2/chats', chatConfig);
  app.route('/api/v2/chats', mcpServers);
  app.route('/api/v2/agents', agents);
  app.route('/api/v2/chats', chatContext);
  app.route('/api/v2/chats', chatTools);
  app.route('/api/v2/chats', chatStream);
  app.route('/api/v2/chats', files);
  app.route('/api/v2/chats', chatSearch);
  app.route('/api/v2/chats', chatSharing);
  app.route('/api/v2/chats', chatConversation);
  app.route('/api/v2/chats', chats);
  app.route('/api/v2/groups', groups);
  app.route('/api/v2/shared', shared);
  app.route('/api/v2/auth', auth);
  app.route('/api/v2', auditLog);

  app.openAPIRegistry.registerComponent('securitySchemes', 'bearer', { type: 'http', scheme: 'bearer' });
  app.openAPIRegistry.registerComponent('securitySchemes', 'cookie', { type: 'apiKey', in: 'cookie', name: 'session_token' });
  // The stream's frames are no route's body: list them so that clients (the SDK) get their types from here too.
  for (const [name, schema] of Object.entries(streamComponents)) app.openAPIRegistry.register(name, schema);
  app.doc31('/api/v2/openapi.json', OPENAPI_CONFIG);
  app.get('/api/v2/docs', (c) => c.html(DOCS_HTML));
  return app;
}

/**
 * The API docs page. Swagger UI's files are served from this deployment's static assets (copied from swagger-ui-dist
 * into web/dist/swagger-ui/ by scripts/web-build.mjs), not a CDN, so the page works offline and under a strict CSP
 * (no inline script: web/public/swagger-ui/init.js reads the document's URL from data-url).
 */
const DOCS_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>chatd-edge API</title>
<link rel="stylesheet" href="/swagger-ui/swagger-ui.css">
</head>
<body>
<div id="swagger-ui" data-url="/api/v2/openapi.json"></div>
<script src="/swagger-ui/swagger-ui-bundle.js"></script>
<script src="/swagger-ui/init.js"></script>
</body>
</html>
`;
