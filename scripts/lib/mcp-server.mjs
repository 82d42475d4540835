// @ts-check
/**
 * A local MCP server (the official `@modelcontextprotocol/sdk`, Streamable HTTP, stateful sessions) for `npm run dev`
 * and the tests: the chat object's MCP client talks to it over HTTP, as it would to any remote server.
 *
 * Endpoints:
 *   POST|GET|DELETE /mcp          the MCP endpoint (Streamable HTTP; a session per `initialize`).
 *   GET  /__mcp/calls             the tool calls received, oldest first: `{tool, args, headers, started_at, ended_at?,
 *                                 aborted}`; `headers` keeps `authorization` (cut to its first characters) and `x-*`.
 *   GET  /__mcp/running?tool=T&n=N[&timeout_ms=10000]
 *                                 answers once N calls of tool T are running (or at the timeout, with `timed_out`):
 *                                 tests wait on this event instead of sleeping.
 *   GET  /__mcp/stats             `{list_requests}`: the `tools/list` requests received (a client's cache is seen working).
 *   POST /__mcp/tools/extra       adds the tool `extra` (returns "extra") to every session, which tells its client
 *                                 that the tool list changed (`notifications/tools/list_changed`).
 *   POST /__mcp/reset             forgets the recorded calls and removes `extra`.
 * /__mcp/* refuses requests that carry an Origin header (web pages); /mcp accepts only this server's own Host.
 *
 * Tools (every one deterministic):
 *   echo {text}        → the text.
 *   add {a, b}         → the sum as text, and `structuredContent: {sum}` (with an output schema).
 *   sleep {ms}         → "slept <ms> ms" after that long; a cancelled call stops at once.
 *   fail {message?}    → a tool error (`isError: true`) with the message (default "the tool failed").
 *   big {chars}        → a text of exactly `chars` characters ("0123456789" repeated).
 */
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { isInitializeRequest } from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';
import { assertPortFree, listenOn } from './ports.mjs';
import { sleep } from './abortable-sleep.mjs';
import { readBody } from './read-body.mjs';

const MAX_BODY_BYTES = 4 * 1024 * 1024;

/**
 * @typedef {object} RecordedCall
 * @property {string} tool
 * @property {unknown} args
 * @property {Record<string, string>} headers
 * @property {number} started_at
 * @property {number} [ended_at]
 * @property {boolean} aborted
 */

/**
 * @typedef {object} LocalMcpServer
 * @property {string} url        the MCP endpoint, e.g. http://127.0.0.1:54332/mcp
 * @property {number} port
 * @property {RecordedCall[]} calls
 * @property {() => Promise<void>} close
 */

/** @param {Record<string, string | string[] | undefined>} raw */
function keptHeaders(raw) {
  /** @type {Record<string, string>} */
  const out = {};
  for (const [name, v] of Object.entries(raw)) {
    if (v === undefined || !(name === 'authorization' || name.startsWith('x-'))) continue;
    const value = Array.isArray(v) ? v.join(', ') : v;
    out[name] = name === 'authorization' ? `${value.slice(0, 12)}${value.length > 12 ? '...' : ''}` : value;
  }
  return out;
}

/** @param {http.IncomingMessage} req @returns {Promise<unknown>} */
async function readJson(req) {
  const text = await readBody(req, MAX_BODY_BYTES, () => new Error('body too large'));
  return text.trim() === '' ? undefined : JSON.parse(text);
}

/**
 * @param {{ port?: number, host?: string, log?: (line: string) => void }} [opts]  port 0 (default) picks a free one
 * @returns {Promise<LocalMcpServer>}
 */
export async function startMcpServer({ port = 0, host = '127.0.0.1', log = () => {} } = {}) {
  if (port !== 0) await assertPortFree(port, 'the local MCP server', 'CHATD_MCP_PORT');
  /** @type {RecordedCall[]} */
  const calls = [];
  /** @type {Map<string, { transport: StreamableHTTPServerTransport, server: McpServer }>} */
  const sessions = new Map();
  /** @type {Set<() => void>} */
  const watchers = new Set();
  let extra = false;
  let listRequests = 0;
  /** @type {Set<McpServer>} */
  const servers = new Set();
  /** @type {Map<McpServer, { remove: () => void }>} */
  const extras = new Map();

  const changed = () => {
    for (const w of [...watchers]) w();
  };

  /**
   * Runs a tool handler, recording the call.
   * @template T
   * @param {string} tool
   * @param {unknown} args
   * @param {{ signal: AbortSignal, requestInfo?: { headers: Record<string, string | string[] | undefined> } }} ctx
   * @param {() => Promise<T>} fn
   * @returns {Promise<T>}
   */
  const recorded = async (tool, args, ctx, fn) => {
    /** @type {RecordedCall} */
    const call = { tool, args, headers: keptHeaders(ctx.requestInfo?.headers ?? {}), started_at: Date.now(), aborted: false };
    calls.push(call);
    changed();
    try {
      return await fn();
    } finally {
      call.ended_at = Date.now();
      call.aborted = ctx.signal.aborted;
      changed();
    }
  };

  /** @param {McpServer} server */
  const addExtra = (server) => {
    const t = server.registerTool('extra', { description: 'Added at run time.', inputSchema: {} }, async (_args, ctx) =>
      recorded('extra', {}, ctx, async () => ({ content: [{ type: /** @type {const} */ ('text'), text: 'extra' }] })),
    );
    extras.set(server, t);
  };

  const build = () => {
    const server = new McpServer({ name: 'chatd-local-mcp', version: '1.0.0' }, { capabilities: { tools: { listChanged: true } } });
    server.registerTool('echo', { description: 'Echoes the text.', inputSchema: { text: z.string() } }, async (args, ctx) =>
      recorded('echo', args, ctx, async () => ({ content: [{ type: /** @type {const} */ ('text'), text: args.text }] })),
    );
    server.registerTool(
      'add',
      { description: 'Adds two numbers.', inputSchema: { a: z.number(), b: z.number() }, outputSchema: { sum: z.number() } },
      async (args, ctx) =>
        recorded('add', args, ctx, async () => ({
          content: [{ type: /** @type {const} */ ('text'), text: String(args.a + args.b) }],
          structuredContent: { sum: args.a + args.b },
        })),
    );
    server.registerTool(
      'sleep',
      { description: 'Waits for ms milliseconds.', inputSchema: { ms: z.number().int().min(0).max(600_000) } },
      async (args, ctx) =>
        recorded('sleep', args, ctx, async () => {
          const slept = await sleep(args.ms, ctx.signal);
          return { content: [{ type: /** @type {const} */ ('text'), text: slept ? `slept ${args.ms} ms` : 'cancelled' }] };
        }),
    );
    server.registerTool('fail', { description: 'Always fails.', inputSchema: { message: z.string().optional() } }, async (args, ctx) =>
      recorded('fail', args, ctx, async () => ({
        isError: true,
        content: [{ type: /** @type {const} */ ('text'), text: args.message ?? 'the tool failed' }],
      })),
    );
    server.registerTool(
      'big',
      { description: 'Returns a text of exactly `chars` characters.', inputSchema: { chars: z.number().int().min(0).max(4_000_000) } },
      async (args, ctx) =>
        recorded('big', args, ctx, async () => ({
          content: [{ type: /** @type {const} */ ('text'), text: '0123456789'.repeat(Math.ceil(args.chars / 10)).slice(0, args.chars) }],
        })),
    );
    if (extra) addExtra(server);
    servers.add(server);
    return server;
  };

  /** @param {http.ServerResponse} res @param {number} status @param {unknown} body */
  const sendJson = (res, status, body) => {
    if (res.headersSent || res.destroyed) return;
    res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
  };

  /** @param {http.IncomingMessage} req @param {http.ServerResponse} res */
  const handleMcp = async (req, res) => {
    const body = req.method === 'POST' ? await readJson(req) : undefined;
    for (const m of Array.isArray(body) ? body : [body]) {
      if (typeof m === 'object' && m !== null && 'method' in m && m.method === 'tools/list') listRequests += 1;
    }
    const sid = req.headers['mcp-session-id'];
    let entry = typeof sid === 'string' ? sessions.get(sid) : undefined;
    if (!entry) {
      if (typeof sid === 'string') return sendJson(res, 404, { jsonrpc: '2.0', error: { code: -32001, message: 'Session not found' }, id: null });
      if (req.method !== 'POST' || !isInitializeRequest(body)) {
        return sendJson(res, 400, { jsonrpc: '2.0', error: { code: -32000, message: 'Bad Request: no session' }, id: null });
      }
      const server = build();
      const transport = new StreamableHTTPServerTransport({
        sessionIdGenerator: () => randomUUID(),
        onsessioninitialized: (id) => {
          sessions.set(id, { transport, server });
        },
        enableDnsRebindingProtection: true,
        allowedHosts: [`127.0.0.1:${actualPort}`, `localhost:${actualPort}`],
      });
      transport.onclose = () => {
        if (transport.sessionId) sessions.delete(transport.sessionId);
        servers.delete(server);
        extras.delete(server);
      };
      await server.connect(transport);
      entry = { transport, server };
    }
    await entry.transport.handleRequest(req, res, body);
  };

  /** @param {http.IncomingMessage} req @param {http.ServerResponse} res @param {URL} url */
  const handleAdmin = async (req, res, url) => {
    if (req.headers.origin !== undefined) return sendJson(res, 403, { message: 'refused: Origin header' });
    if (req.method === 'GET' && url.pathname === '/__mcp/calls') return sendJson(res, 200, calls);
    if (req.method === 'GET' && url.pathname === '/__mcp/stats') return sendJson(res, 200, { list_requests: listRequests });
    if (req.method === 'GET' && url.pathname === '/__mcp/running') {
      const tool = url.searchParams.get('tool') ?? '';
      const n = Number(url.searchParams.get('n') ?? '1');
      const timeoutMs = Number(url.searchParams.get('timeout_ms') ?? '10000');
      const running = () => calls.filter((c) => c.tool === tool && c.ended_at === undefined).length;
      const state = await new Promise((resolve) => {
        const check = () => {
          if (running() >= n) done(false);
        };
        const timer = setTimeout(() => done(true), timeoutMs);
        const done = (/** @type {boolean} */ timedOut) => {
          clearTimeout(timer);
          watchers.delete(check);
          resolve({ tool, running: running(), ...(timedOut ? { timed_out: true } : {}) });
        };
        watchers.add(check);
        check();
      });
      return sendJson(res, 200, state);
    }
    if (req.method === 'POST' && url.pathname === '/__mcp/tools/extra') {
      extra = true;
      for (const s of servers) if (!extras.has(s)) addExtra(s);
      return sendJson(res, 200, { extra: true, sessions: servers.size });
    }
    if (req.method === 'POST' && url.pathname === '/__mcp/reset') {
      calls.length = 0;
      extra = false;
      for (const t of extras.values()) t.remove();
      extras.clear();
      return sendJson(res, 200, { ok: true });
    }
    return sendJson(res, 404, { message: `no ${req.method ?? ''} ${url.pathname}` });
  };

  let actualPort = port;
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://mcp');
    const work = url.pathname === '/mcp' ? handleMcp(req, res) : url.pathname.startsWith('/__mcp/') ? handleAdmin(req, res, url) : null;
    if (!work) return sendJson(res, 404, { message: `no route ${url.pathname}` });
    work.catch((/** @type {unknown} */ e) => {
      log(`mcp-server: ${req.method ?? ''} ${url.pathname}: ${e instanceof Error ? e.message : String(e)}`);
      if (!res.headersSent) sendJson(res, 500, { message: 'internal error' });
      else res.destroy();
    });
  });
  server.keepAliveTimeout = 65_000;
  actualPort = await listenOn(server, host, port);
  return {
    url: `http://${host}:${actualPort}/mcp`,
    port: actualPort,
    calls,
    close: async () => {
      for (const { transport } of sessions.values()) await transport.close().catch(() => undefined);
      const closed = new Promise((resolve) => server.close(() => resolve(undefined)));
      server.closeAllConnections();
      await closed;
    },
  };
}
