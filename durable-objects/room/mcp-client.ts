/**
 * The MCP client of a chat's object: the official SDK's client over Streamable HTTP, one session per server, opened at
 * first use and closed after MCP_IDLE_CLOSE_MS without use (an open session holds a notification stream, which keeps
 * the object awake). Tool lists are kept per isolate for MCP_TOOLS_TTL_MS, and dropped at once when a server says its
 * list changed (`notifications/tools/list_changed`). Output schemas are checked with @cfworker/json-schema: the SDK's
 * default (Ajv) compiles code at run time, which Workers forbid. Everything a server answers is parsed with zod here.
 */
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport, StreamableHTTPError } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { McpError, ToolListChangedNotificationSchema } from '@modelcontextprotocol/sdk/types.js';
import { CfWorkerJsonSchemaValidator } from '@modelcontextprotocol/sdk/validation/cfworker';
import { z } from 'zod';

/** A server as the client reaches it. */
export interface McpEndpoint {
  /** The identity of the server's settings (its row's version, or the pinned URL and headers): sessions and tool lists are kept by it. */
  key: string;
  name: string;
  url: string;
  /** The headers to send (opened from their sealed form when a session starts). */
  headers: () => Promise<Record<string, string>>;
}

/** A tool as a server lists it. `inputSchema` is a JSON Schema object. */
export const McpTool = z.object({
  name: z.string().min(1).max(256),
  description: z.string().max(16_384).optional(),
  inputSchema: z.looseObject({ type: z.literal('object') }),
});
export type McpTool = z.infer<typeof McpTool>;
const ListResult = z.object({ tools: z.array(z.unknown()), nextCursor: z.string().optional() });

/** What a tool call answered (`isError`: the tool reports a failure, which the model sees). */
export const CallResult = z.object({
  content: z.array(z.looseObject({ type: z.string() })).default([]),
  structuredContent: z.record(z.string(), z.unknown()).optional(),
  isError: z.boolean().optional(),
});
export type CallResult = z.infer<typeof CallResult>;

/** Why a call or a listing did not get an answer: each becomes an error result the model sees, never a failed turn. */
export class McpCallError extends Error {
  constructor(
    readonly kind: 'unreachable' | 'timeout' | 'interrupted' | 'failed',
    message: string,
  ) {
    super(message);
    this.name = 'McpCallError';
  }
}

export const MCP_IDLE_CLOSE_MS = 30_000;
const MAX_LISTED_TOOLS = 1000;
const TOOL_LIST_CACHE_MAX = 256;

/** Tool lists per server, shared by every chat object of the isolate. */
const toolLists = new Map<string, { at: number; generation: number; tools: McpTool[] }>();
/** Bumped for a server whenever it says its list changed, so a listing already in flight is not kept. */
const listGenerations = new Map<string, number>();

function listChanged(key: string): void {
  listGenerations.set(key, (listGenerations.get(key) ?? 0) + 1);
  toolLists.delete(key);
}

interface Session {
  client: Client;
  transport: StreamableHTTPClientTransport | null;
  ready: Promise<void>;
  users: number;
  timer: ReturnType<typeof setTimeout> | undefined;
  closed: boolean;
}

/** Waits for `p`, or rejects as soon as `signal` aborts. */
function until<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(new Error('aborted'));
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => {
      reject(new Error('aborted'));
    };
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(resolve, reject).finally(() => {
      signal.removeEventListener('abort', onAbort);
    });
  });
}

const clip = (s: string, n = 300) => (s.length > n ? `${s.slice(0, n - 1)}…` : s);

export class McpClients {
  private readonly sessions = new Map<string, Session>();

  constructor(private readonly opts: { toolsTtlMs: number; idleCloseMs?: number }) {}

  /** The server's tools: from the isolate's list when fresh, else asked (all pages). */
  async tools(ep: McpEndpoint, signal: AbortSignal, timeoutMs: number): Promise<McpTool[]> {
    const hit = toolLists.get(ep.key);
    if (hit && Date.now() - hit.at < this.opts.toolsTtlMs && hit.generation === (listGenerations.get(ep.key) ?? 0)) return hit.tools;
    const generation = listGenerations.get(ep.key) ?? 0;
    const tools = await this.request(ep, signal, timeoutMs, async (client, both) => {
      const out: McpTool[] = [];
      let cursor: string | undefined;
      do {
        const page = ListResult.parse(await client.listTools(cursor === undefined ? undefined : { cursor }, { signal: both, timeout: timeoutMs }));
        for (const raw of page.tools) {
          const t = McpTool.safeParse(raw);
          if (t.success) out.push(t.data);
        }
        cursor = page.nextCursor;
      } while (cursor !== undefined && out.length < MAX_LISTED_TOOLS);
      return out;
    });
    if (generation === (listGenerations.get(ep.key) ?? 0)) {
      if (toolLists.size >= TOOL_LIST_CACHE_MAX) toolLists.clear();
      toolLists.set(ep.key, { at: Date.now(), generation, tools });
    }
    return tools;
  }

  /** Calls a tool. Rejects with an McpCallError when there is no answer (unreachable, timeout, interrupted, protocol error). */
  async call(ep: McpEndpoint, tool: string, args: Record<string, unknown>, signal: AbortSignal, timeoutMs: number): Promise<CallResult> {
    return await this.request(ep, signal, timeoutMs, async (client, both) =>
      CallResult.parse(await client.callTool({ name: tool, arguments: args }, undefined, { signal: both, timeout: timeoutMs })),
    );
  }

  /** Ends every session (the chat was deleted, or the object is going away). */
  async closeAll(): Promise<void> {
    const all = [...this.sessions.entries()];
    this.sessions.clear();
    await Promise.all(all.map(([, s]) => this.end(s)));
  }

  /**
   * Runs a request on the server's session within `timeoutMs` and `signal`. A session the server no longer knows
   * (it restarted: 404) is replaced once, since the request never reached a tool then.
   */
  private async request<T>(
    ep: McpEndpoint,
    signal: AbortSignal,
    timeoutMs: number,
    fn: (client: Client, signal: AbortSignal) => Promise<T>,
  ): Promise<T> {
    const timeout = AbortSignal.timeout(timeoutMs);
    const both = AbortSignal.any([signal, timeout]);
    for (let attempt = 0; ; attempt++) {
      const session = this.session(ep);
      session.users += 1;
      if (session.timer !== undefined) clearTimeout(session.timer);
      try {
        try {
          await until(session.ready, both);
        } catch (e) {
          if (signal.aborted) throw new McpCallError('interrupted', 'The tool call was interrupted.');
          if (timeout.aborted) throw new McpCallError('timeout', `The MCP server ${ep.name} did not answer within ${timeoutMs} ms.`);
          throw new McpCallError('unreachable', `The MCP server ${ep.name} could not be reached${reason(e)}.`);
        }
        return await fn(session.client, both);
      } catch (e) {
        if (e instanceof McpCallError) throw e;
        if (signal.aborted) throw new McpCallError('interrupted', 'The tool call was interrupted.');
        if (timeout.aborted || (e instanceof McpError && e.code === -32001)) {
          throw new McpCallError('timeout', `The tool call did not answer within ${timeoutMs} ms.`);
        }
        this.drop(ep.key, session);
        if (e instanceof StreamableHTTPError && e.code === 404 && attempt === 0) continue;
        if (e instanceof McpError) throw new McpCallError('failed', `The MCP server ${ep.name} refused the request: ${clip(e.message)}`);
        if (e instanceof z.ZodError) throw new McpCallError('failed', `The MCP server ${ep.name} sent an answer that is not valid MCP.`);
        throw new McpCallError('unreachable', `The MCP server ${ep.name} could not be reached${reason(e)}.`);
      } finally {
        session.users -= 1;
        if (session.users === 0 && !session.closed) {
          session.timer = setTimeout(() => {
            if (session.users === 0) this.drop(ep.key, session);
          }, this.opts.idleCloseMs ?? MCP_IDLE_CLOSE_MS);
        }
      }
    }
  }

  private session(ep: McpEndpoint): Session {
    const known = this.sessions.get(ep.key);
    if (known && !known.closed) return known;
    const client = new Client({ name: 'chatd-edge', version: '2.0.0' }, { capabilities: {}, jsonSchemaValidator: new CfWorkerJsonSchemaValidator() });
    client.setNotificationHandler(ToolListChangedNotificationSchema, () => {
      listChanged(ep.key);
    });
    const session: Session = { client, transport: null, ready: Promise.resolve(), users: 0, timer: undefined, closed: false };
    client.onclose = () => {
      if (this.sessions.get(ep.key) === session) this.sessions.delete(ep.key);
      session.closed = true;
    };
    session.ready = (async () => {
      const headers = await ep.headers();
      const transport = new StreamableHTTPClientTransport(new URL(ep.url), { requestInit: { headers } });
      session.transport = transport;
      await client.connect(transport);
    })();
    session.ready.catch(() => {
      this.drop(ep.key, session);
    });
    this.sessions.set(ep.key, session);
    return session;
  }

  private drop(key: string, session: Session): void {
    if (this.sessions.get(key) === session) this.sessions.delete(key);
    void this.end(session);
  }

  private async end(session: Session): Promise<void> {
    if (session.closed) return;
    session.closed = true;
    if (session.timer !== undefined) clearTimeout(session.timer);
    try {
      // Tells the server the session is over (DELETE), then closes the notification stream.
      await session.transport?.terminateSession();
    } catch {
      // a server that is gone has nothing to end
    }
    await session.client.close().catch(() => undefined);
  }
}

/** A short, safe reason: HTTP statuses and well-known network failures only, never a body. */
function reason(e: unknown): string {
  if (e instanceof StreamableHTTPError && e.code !== undefined) return ` (HTTP ${e.code})`;
  return '';
}
