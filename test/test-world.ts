/**
 * A world for the worker suites, started in Node before them (test/global-setup.ts hands one to each worker project): a
 * real Postgres (embedded, in a temporary folder) with the real migrations applied to a template database, the
 * WebSocket proxy the Neon driver uses to reach it, the mock LLM, the MCP server, the OpenID provider and a push
 * service. Worker tests use `chatd_test` (cloned from the template) or clone their own empty world from it.
 */
import type { ProvidedContext } from 'vitest';
import http from 'node:http';
import net from 'node:net';
import pg from 'pg';
import { migrateUp } from '../scripts/lib/migrate.mjs';
import { startMcpServer } from '../scripts/lib/mcp-server.mjs';
import { startMockLlm } from '../scripts/lib/mock-llm.mjs';
import { startOidcProvider } from '../scripts/lib/oidc-provider.mjs';
import { startPgWsProxy } from '../scripts/lib/pg-ws-proxy.mjs';
import { startScratchPostgres } from '../scripts/lib/scratch-db.mjs';
import { sealProviderKey } from '../scripts/lib/seal.mjs';

declare module 'vitest' {
  export interface ProvidedContext {
    pgUrl: string;
    pgAdminUrl: string;
    pgWsProxy: string;
    pgWsProxyToken: string;
    pgTemplate: string;
    silentPort: number;
    mockLlmUrl: string;
    mockModelConfigId: string;
    /** The local MCP server's endpoint (scripts/lib/mcp-server.mjs), e.g. http://127.0.0.1:PORT/mcp. */
    mcpServerUrl: string;
    /** JSON `{ ciphertext, keyId, providerId, plaintext }` sealed by scripts/lib/seal.mjs, for seal-compat.test.ts. */
    sealedFromNode: string;
    pushServerUrl: string;
    /** POST <url>/pause stops the tests' Postgres (its data kept), POST <url>/resume starts it again: outages. */
    pgControlUrl: string;
    /** The local OpenID provider's issuer (scripts/lib/oidc-provider.mjs); its client is `chatd-local`. */
    oidcIssuer: string;
  }
}

/** A started world: the values its project's suites `inject`, and how to stop it. */
export interface World {
  values: ProvidedContext;
  close: () => Promise<void>;
}

export async function startWorld(): Promise<World> {
  // A failure to start Postgres is a message naming the cause and the fix: show it without a stack trace.
  const server = await startScratchPostgres('test', { crashSafe: true }).catch((e: unknown) => {
    const err = e instanceof Error ? e : new Error(String(e));
    err.stack = `${err.name}: ${err.message}`;
    throw err;
  });
  // A TCP server that accepts and never answers: a database that hangs, for the timeout tests.
  const held = new Set<net.Socket>();
  const silent = net.createServer((s) => {
    held.add(s);
    s.on('close', () => held.delete(s));
  });
  await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
  const addr = silent.address();
  const silentPort = typeof addr === 'object' && addr ? addr.port : 0;
  // The proxy forwards to the test Postgres and the silent server only, for clients with its token.
  const proxy = await startPgWsProxy({ port: 0, ports: [server.port, silentPort] });
  const admin = new pg.Client(server.url);
  await admin.connect();
  await admin.query('CREATE DATABASE chatd_template');
  const tpl = new pg.Client(server.urlFor('chatd_template'));
  await tpl.connect();
  await migrateUp(tpl);
  // Titles written by a model start off in every test database: a title call after each chat's first answer would
  // add model requests and usage to suites that count them. test/worker/titles.test.ts turns them on for itself.
  await tpl.query("INSERT INTO site_configs (key, value) VALUES ('title_model', $1)", [JSON.stringify({ model_config_id: null, enabled: false })]);
  await tpl.end();
  await admin.query('CREATE DATABASE chatd_test TEMPLATE chatd_template');
  await admin.end();

  // The one part replaced in tests: the LLM, by a mock OpenAI-compatible server over HTTP. The shared test
  // database gets a provider pointing at it and a default model config (chats' Durable Objects use that database).
  const mock = await startMockLlm({ requireAuth: false });
  const seed = new pg.Client(server.urlFor('chatd_test'));
  await seed.connect();
  await seed.query("INSERT INTO chat_providers (provider, display_name, base_url) VALUES ('openai-compat', 'Mock', $1)", [
    `${mock.url}/v1`,
  ]);
  const cfg = await seed.query(
    "INSERT INTO chat_model_configs (provider, model, display_name, is_default, context_limit) VALUES ('openai-compat', 'mock-echo', 'Mock echo', true, 100000) RETURNING id",
  );
  await seed.end();
  // The tools' side: a real MCP server over HTTP (the official SDK), which the chat objects' MCP client reaches.
  const mcp = await startMcpServer();
  // Single sign-on's side: a real OpenID provider on loopback (discovery, JWKS, signed ID tokens).
  const oidc = await startOidcProvider({ redirectUris: ['http://chatd.test/api/v2/auth/oidc/callback'] });

  // A provider key sealed in Node (as `npm run dev` seeds them) with the Worker's PROVIDER_KEY_ENCRYPTION_KEY
  // binding in vitest.config.ts; the Worker must open it (test/worker/seal-compat.test.ts).
  const providerId = '00000000-0000-4000-8000-000000000001';
  const plaintext = 'sk-sealed-in-node-0123456789';
  const sealed = await sealProviderKey('dGVzdC1rZXktMzItYnl0ZXMtbG9uZy0tLS0tLS0tLS0=', providerId, plaintext);

  // A stand-in push service: POST /push/<status>/<id> records the request and answers <status> (a 3xx with a
  // Location: /push/201/followed-<id>);
  // GET /__requests lists what it received (bodies base64), for the tests to decrypt and verify.
  const pushed: { path: string; headers: Record<string, string | string[] | undefined>; body: string }[] = [];
  const pushServer = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (req.method === 'GET' && req.url === '/__requests') {
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(pushed));
        return;
      }
      const m = /^\/push\/(\d{3})\/(.*)$/.exec(req.url ?? '');
      pushed.push({ path: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString('base64') });
      const status = m ? Number(m[1]) : 404;
      // A redirect points at /push/201/followed-<id>: a sender that follows it shows up there.
      const location = status >= 300 && status < 400 && m ? { location: `/push/201/followed-${m[2] ?? ''}` } : undefined;
      res.writeHead(status, location).end();
    });
  });
  await new Promise<void>((r) => pushServer.listen(0, '127.0.0.1', r));
  const pushAddr = pushServer.address();

  // Outages on demand: the fault tests stop the tests' own Postgres and start it again. Each call answers once done.
  const control = http.createServer((req, res) => {
    // Immediate mode: every backend quits mid-statement, as in a crash or a network loss (a fast shutdown would let a
    // statement waiting on a lock that its shutdown releases commit first).
    const act =
      req.method === 'POST' && req.url === '/pause' ? () => server.pause({ immediate: true }) : req.method === 'POST' && req.url === '/resume' ? server.resume : null;
    if (!act) {
      res.writeHead(404).end();
      return;
    }
    act().then(
      () => res.writeHead(204).end(),
      (e: unknown) => res.writeHead(500, { 'content-type': 'text/plain' }).end(e instanceof Error ? e.message : String(e)),
    );
  });
  await new Promise<void>((r) => control.listen(0, '127.0.0.1', r));
  const controlAddr = control.address();

  const values: ProvidedContext = {
    pgUrl: server.urlFor('chatd_test'),
    pgAdminUrl: server.url,
    pgWsProxy: `127.0.0.1:${proxy.port}`,
    pgWsProxyToken: proxy.token,
    pgTemplate: 'chatd_template',
    silentPort,
    mockLlmUrl: mock.url,
    mockModelConfigId: (cfg.rows[0] as { id: string }).id,
    mcpServerUrl: mcp.url,
    sealedFromNode: JSON.stringify({ ...sealed, providerId, plaintext }),
    pushServerUrl: `http://127.0.0.1:${typeof pushAddr === 'object' && pushAddr ? pushAddr.port : 0}`,
    pgControlUrl: `http://127.0.0.1:${typeof controlAddr === 'object' && controlAddr ? controlAddr.port : 0}`,
    oidcIssuer: oidc.issuer,
  };
  const close = async () => {
    control.close();
    await server.resume();
    pushServer.closeAllConnections();
    pushServer.close();
    for (const s of held) s.destroy();
    silent.close();
    await mock.close();
    await mcp.close();
    await oidc.close();
    await proxy.close();
    await server.stop();
  };
  return { values, close };
}
