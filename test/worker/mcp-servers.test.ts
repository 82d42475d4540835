/**
 * The deployment's MCP servers (owners), their sealed headers, the URL rules (shared with Web Push), and the host
 * allowlist for servers an agent pins into its chats.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { mcpUrlProblem } from '../../functions/core/mcp-config';
import { Chat as ChatSchema } from '../../functions/core/shapes/chat';
import { call, makeOwner, makeUser, messagesOf, roomOf, testDb, testEnv } from './helpers';
import { mcpAddExtraTool, mcpCalls, mcpListRequests, mcpReset, McpServerBody, mcpServers, ToolResult, toolKnob } from './tool-helpers';

const servers = mcpServers();
afterEach(async () => {
  await servers.cleanup();
  const owner = await makeOwner();
  await call('PUT', '/api/v2/chats/config/mcp-allowed-hosts', { token: owner.token, body: { hosts: [] } });
});

const Tools = z.object({
  tools: z.array(z.object({ name: z.string(), server: z.string(), tool: z.string(), description: z.string(), approval: z.string(), pinned: z.boolean(), input_schema: z.record(z.string(), z.unknown()) }).strict()),
  unavailable: z.array(z.object({ server: z.string(), reason: z.string() }).strict()),
});

describe('MCP servers (owner)', () => {
  it('seals header values and never returns them; the server receives them; PATCH and DELETE', async () => {
    const tag = crypto.randomUUID().slice(0, 8);
    const { server, owner, tool } = await servers.add({ tool_approval: 'auto', headers: { authorization: `Bearer secret-${tag}`, 'x-team': `blue-${tag}` } });
    expect(server).toMatchObject({ has_headers: true, enabled: true, tool_approval: 'auto', allowed_tools: null });
    const list = await call('GET', '/api/v2/chats/mcp-servers', { token: owner.token });
    expect(list.status).toBe(200);
    expect(list.text).not.toContain(`secret-${tag}`);
    expect(list.text).not.toContain(`blue-${tag}`);
    expect(z.array(McpServerBody).parse(list.body).find((s) => s.id === server.id)).toEqual(server);
    const db = testDb();
    const row = z.object({ headers: z.string(), headers_key_id: z.string() }).parse((await db.query('SELECT headers, headers_key_id FROM mcp_servers WHERE id = $1', [server.id])).rows[0]);
    await db.close();
    expect(row.headers).not.toContain(tag);

    // A turn's call carries them to the server.
    const u = await makeUser();
    const r = await call('POST', '/api/v2/chats', { token: u.token, body: { content: `hdr ${toolKnob(tool('echo'), { text: tag })}` } });
    await roomOf(ChatSchema.parse(r.body).id).idle();
    const [recorded] = await mcpCalls(tag);
    expect(recorded?.headers['x-team']).toBe(`blue-${tag}`);
    expect(recorded?.headers.authorization).toMatch(/^Bearer secr/);

    const patched = await call('PATCH', `/api/v2/chats/mcp-servers/${server.id}`, {
      token: owner.token,
      body: { headers: null, tool_approval: 'deny', allowed_tools: ['echo'], enabled: false },
    });
    expect(patched.status, patched.text).toBe(200);
    expect(McpServerBody.parse(patched.body)).toMatchObject({ has_headers: false, tool_approval: 'deny', allowed_tools: ['echo'], enabled: false });
    expect((await call('POST', '/api/v2/chats/mcp-servers', { token: owner.token, body: { name: server.name, url: server.url } })).status).toBe(409);
    expect((await call('DELETE', `/api/v2/chats/mcp-servers/${server.id}`, { token: owner.token })).status).toBe(204);
    expect((await call('DELETE', `/api/v2/chats/mcp-servers/${server.id}`, { token: owner.token })).status).toBe(404);
  });

  it('members get 403 on every admin route; bad bodies are 400', async () => {
    const member = await makeUser();
    const owner = await makeOwner();
    const id = crypto.randomUUID();
    for (const [method, path, body] of [
      ['GET', '/api/v2/chats/mcp-servers', undefined],
      ['POST', '/api/v2/chats/mcp-servers', { name: 'x', url: testEnv.MCP_SERVER_URL }],
      ['PATCH', `/api/v2/chats/mcp-servers/${id}`, { enabled: false }],
      ['DELETE', `/api/v2/chats/mcp-servers/${id}`, undefined],
      ['GET', '/api/v2/chats/config/mcp-allowed-hosts', undefined],
      ['PUT', '/api/v2/chats/config/mcp-allowed-hosts', { hosts: [] }],
    ] as const) {
      expect((await call(method, path, { token: member.token, body })).status, `${method} ${path}`).toBe(403);
    }
    for (const body of [
      { name: 'a__b', url: testEnv.MCP_SERVER_URL },
      { name: 'has space', url: testEnv.MCP_SERVER_URL },
      { name: 'ok', url: 'ftp://example.com/mcp' },
      { name: 'ok', url: testEnv.MCP_SERVER_URL, tool_approval: 'sometimes' },
      { name: 'ok', url: testEnv.MCP_SERVER_URL, headers: { host: 'evil' } },
      { name: 'ok', url: testEnv.MCP_SERVER_URL, extra: true },
    ]) {
      expect((await call('POST', '/api/v2/chats/mcp-servers', { token: owner.token, body })).status, JSON.stringify(body)).toBe(400);
    }
  });

  it('URLs follow the Web Push rules: https, default port, public host names; the allowlist for agents applies on top', () => {
    const strict = { MCP_ALLOW_INSECURE_URLS: false };
    expect(mcpUrlProblem('https://mcp.example.com/mcp', strict, null)).toBeNull();
    for (const bad of [
      'http://mcp.example.com/mcp',
      'https://127.0.0.1/mcp',
      'https://[::1]/mcp',
      'https://169.254.169.254/latest',
      'https://localhost/mcp',
      'https://db.internal/mcp',
      'https://printer.local/mcp',
      'https://intranet/mcp',
      'https://user:pw@mcp.example.com/mcp',
      'https://mcp.example.com:8443/mcp',
      'not a url',
    ]) {
      expect(mcpUrlProblem(bad, strict, null), bad).not.toBeNull();
    }
    // Agents' servers: only hosts on the owners' allowlist (empty: none), even in development.
    expect(mcpUrlProblem('https://mcp.example.com/mcp', strict, [])).toBe("must be on a host in the deployment's MCP allowlist");
    expect(mcpUrlProblem('https://a.tools.example.org/mcp', strict, ['*.tools.example.org'])).toBeNull();
    expect(mcpUrlProblem('http://127.0.0.1:9/mcp', { MCP_ALLOW_INSECURE_URLS: true }, [])).not.toBeNull();
    expect(mcpUrlProblem('http://127.0.0.1:9/mcp', { MCP_ALLOW_INSECURE_URLS: true }, ['127.0.0.1'])).toBeNull();
  });
});

describe('tool lists', () => {
  it("are kept (one tools/list for several reads) and listed again when the server says they changed", async () => {
    const { tool } = await servers.add({ tool_approval: 'auto' });
    const u = await makeUser();
    const r = await call('POST', '/api/v2/chats', { token: u.token, body: { content: 'list' } });
    const chat = ChatSchema.parse(r.body);
    await roomOf(chat.id).idle();
    const names = async () => Tools.parse((await call('GET', `/api/v2/chats/${chat.id}/tools`, { token: u.token })).body).tools.map((t) => t.name);
    const before = await mcpListRequests();
    expect(await names()).toContain(tool('echo'));
    expect(await names()).not.toContain(tool('extra'));
    // The turn listed the server already: both reads came from the kept list (MCP_TOOLS_TTL_MS is 5 minutes).
    expect(await mcpListRequests()).toBe(before);
    try {
      await mcpAddExtraTool();
      // The server's notifications/tools/list_changed reaches the chat's session; the next read lists again.
      const deadline = Date.now() + 10_000;
      while (!(await names()).includes(tool('extra'))) {
        if (Date.now() > deadline) throw new Error('the changed tool list was not seen within 10 s');
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      expect(await mcpListRequests()).toBeGreaterThan(before);
    } finally {
      await mcpReset();
    }
  });
});

describe("an agent's pinned MCP servers", () => {
  it('are refused outside the allowlist; once allowed, their tools ask the chat owner first', async () => {
    const owner = await makeOwner();
    const agent = z.object({ id: z.string(), token: z.string() }).parse((await call('POST', '/api/v2/agents', { token: owner.token, body: { name: `a-${crypto.randomUUID().slice(0, 8)}` } })).body);
    const pushed = await call('PUT', '/api/v2/agents/me/context', {
      token: agent.token,
      body: { resources: [{ source: 'mcp/pinned-local.json', body_kind: 'mcp_server', body: { url: testEnv.MCP_SERVER_URL }, status: 'ok' }] },
    });
    expect(pushed.status, pushed.text).toBe(204);
    const u = await makeUser();
    const r = await call('POST', '/api/v2/chats', { token: u.token, body: { content: 'hello', agent_id: agent.id } });
    const chat = ChatSchema.parse(r.body);
    await roomOf(chat.id).idle();

    const refused = Tools.parse((await call('GET', `/api/v2/chats/${chat.id}/tools`, { token: u.token })).body);
    expect(refused.tools.filter((t) => t.pinned)).toEqual([]);
    expect(refused.unavailable).toContainEqual({
      server: 'pinned-local',
      reason: "The URL of the pinned MCP server pinned-local must be on a host in the deployment's MCP allowlist.",
    });
    // A call the model makes anyway is an error result, never run.
    const tag = crypto.randomUUID().slice(0, 8);
    await call('POST', `/api/v2/chats/${chat.id}/messages`, { token: u.token, body: { content: `try ${toolKnob('pinned-local__echo', { text: tag })}` } });
    expect(await roomOf(chat.id).idle()).toBe('waiting');
    const denied = ToolResult.parse((await messagesOf(chat.id, u.token)).at(-2)?.content[0]);
    expect(denied.is_error).toBe(true);
    expect(await mcpCalls(tag)).toEqual([]);

    const put = await call('PUT', '/api/v2/chats/config/mcp-allowed-hosts', { token: owner.token, body: { hosts: ['127.0.0.1'] } });
    expect(put.status, put.text).toBe(200);
    const allowed = Tools.parse((await call('GET', `/api/v2/chats/${chat.id}/tools`, { token: u.token })).body);
    const pinned = allowed.tools.filter((t) => t.pinned);
    expect(pinned.map((t) => t.name).sort()).toEqual(['pinned-local__add', 'pinned-local__big', 'pinned-local__echo', 'pinned-local__fail', 'pinned-local__sleep']);
    expect(new Set(pinned.map((t) => t.approval))).toEqual(new Set(['ask']));
    expect(pinned.find((t) => t.tool === 'add')?.input_schema).toMatchObject({ type: 'object', properties: { a: { type: 'number' } } });
    await call('POST', `/api/v2/chats/${chat.id}/messages`, { token: u.token, body: { content: `again ${toolKnob('pinned-local__echo', { text: tag })}` } });
    expect(await roomOf(chat.id).idle()).toBe('requires_action');
  });
});
