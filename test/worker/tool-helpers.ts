/** Helpers for the tool suites: MCP servers registered through the API, the mock model's tool knobs, the local MCP server's records. */
import { expect } from 'vitest';
import { z } from 'zod';
import { ChatdError } from '@chatd-edge/sdk';
import { Chat } from '../../functions/core/shapes/chat';
import { McpServer } from '../../functions/core/shapes/tools';
import { call, makeOwner, roomOf, sdk, testDb, testEnv, uniq } from './helpers';

/** A server as the API answers it: the shared shape, strict, so that a field it must not return (headers) fails. */
export const McpServerBody = McpServer.strict();

/**
 * MCP servers registered by a suite. Every enabled server is offered to every chat of the shared database, so each
 * test removes its own (`cleanup`) before the next file's chats run.
 */
export function mcpServers() {
  const created: { id: string; token: string }[] = [];
  return {
    /** Registers the local MCP server (or `url`) under a fresh name; answers the server and its tools' prefix. */
    async add(fields: { tool_approval?: 'auto' | 'ask' | 'deny'; headers?: Record<string, string>; url?: string; allowed_tools?: string[]; enabled?: boolean } = {}) {
      const owner = await makeOwner();
      const name = `s${uniq()}`.slice(0, 32);
      const server = McpServerBody.parse(await sdk(owner.token).createMcpServer({ name, url: testEnv.MCP_SERVER_URL, ...fields }));
      created.push({ id: server.id, token: owner.token });
      return { server, owner, tool: (t: string) => `${name}__${t}` };
    },
    async cleanup() {
      for (const c of created.splice(0)) {
        // A test may have removed its server already.
        await sdk(c.token)
          .deleteMcpServer(c.id)
          .catch((e: unknown) => {
            if (!(e instanceof ChatdError && e.status === 404)) throw e;
          });
      }
    },
  };
}

/** The mock model's plan of tool steps: each step's calls, `{name, args}`. */
export const toolsKnob = (steps: { name: string; args?: Record<string, unknown> }[][], extra = '') =>
  `[[mock tools=${JSON.stringify(JSON.stringify(steps))}${extra ? ` ${extra}` : ''}]]`;

/** One tool call per step, in the first `times` steps. */
export const toolKnob = (name: string, args: Record<string, unknown> = {}, times = 1) =>
  `[[mock tool="${name}" tool_args=${JSON.stringify(JSON.stringify(args))} tool_times=${times}]]`;

/** Starts a chat whose first message is `content` and waits until nothing runs; answers the chat and its status then. */
export async function chatUntilIdle(token: string, content: string, extra: Record<string, unknown> = {}) {
  const r = await call('POST', '/api/v2/chats', { token, body: { content, ...extra } });
  expect(r.status, r.text).toBe(201);
  const chat = Chat.parse(r.body);
  const status = await roomOf(chat.id).idle();
  return { chat, status };
}

const Call = z.object({
  tool: z.string(),
  args: z.unknown(),
  headers: z.record(z.string(), z.string()),
  started_at: z.number(),
  ended_at: z.number().optional(),
  aborted: z.boolean(),
});
const mcpAdmin = (path: string) => testEnv.MCP_SERVER_URL.replace(/\/mcp$/, `/__mcp/${path}`);

/** The tool calls the local MCP server received whose arguments contain `marker`. */
export async function mcpCalls(marker: string) {
  const all = z.array(Call).parse(await (await fetch(mcpAdmin('calls'))).json());
  return all.filter((c) => JSON.stringify(c.args).includes(marker));
}

/** The one call with `marker` in its arguments, once it has ended on the server. */
export async function mcpCallEnded(marker: string, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const [c] = await mcpCalls(marker);
    if (c?.ended_at !== undefined) return c;
    if (Date.now() > deadline) throw new Error(`the MCP call with ${marker} did not end in time`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Resolves once `n` calls of `tool` are running on the local MCP server. */
export async function mcpRunning(tool: string, n = 1) {
  const state = z
    .object({ running: z.number(), timed_out: z.boolean().optional() })
    .parse(await (await fetch(`${mcpAdmin('running')}?tool=${tool}&n=${n}&timeout_ms=10000`)).json());
  if (state.timed_out) throw new Error(`${state.running} of ${n} ${tool} calls running after 10 s`);
}

/** The chat's live messages as Postgres holds them: role, idempotency key, content. */
export async function storedMessages(chatId: string) {
  const db = testDb();
  try {
    const r = await db.query('SELECT id::int AS id, role::text AS role, idempotency_key AS key, content FROM chat_messages WHERE chat_id = $1 AND NOT deleted ORDER BY id', [chatId]);
    return z.array(z.object({ id: z.number(), role: z.string(), key: z.string().nullable(), content: z.array(z.looseObject({ type: z.string() })) })).parse(r.rows);
  } finally {
    await db.close();
  }
}

export const ToolCall = z.object({ type: z.literal('tool_call'), tool_call_id: z.string(), name: z.string(), args: z.record(z.string(), z.unknown()) }).strict();
export const ToolResult = z
  .object({
    type: z.literal('tool_result'),
    tool_call_id: z.string(),
    name: z.string(),
    result: z.object({ content: z.array(z.looseObject({ type: z.string() })), structuredContent: z.unknown().optional(), truncated: z.literal(true).optional() }).strict(),
    is_error: z.boolean(),
  })
  .strict();

/** The text of a tool result part. */
export const resultTextOf = (p: unknown) =>
  ToolResult.parse(p)
    .result.content.map((c) => (typeof c.text === 'string' ? c.text : ''))
    .join('\n');

/** The `tools/list` requests the local MCP server has received so far. */
export async function mcpListRequests() {
  return z.object({ list_requests: z.number() }).parse(await (await fetch(mcpAdmin('stats'))).json()).list_requests;
}

/** Adds the tool `extra` to the local MCP server, which tells every session that its tool list changed. */
export async function mcpAddExtraTool() {
  expect((await fetch(mcpAdmin('tools/extra'), { method: 'POST' })).status).toBe(200);
}

/** Removes `extra` again and forgets the recorded calls. */
export async function mcpReset() {
  expect((await fetch(mcpAdmin('reset'), { method: 'POST' })).status).toBe(200);
}
