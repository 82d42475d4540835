/**
 * The tools a chat's turns see, and running them: the deployment's enabled MCP servers and the chat's pinned
 * `mcp_server` resources (each checked against the URL rules, pinned ones against the owners' host allowlist too),
 * their tools listed (kept per isolate, see mcp-client.ts), restricted by `allowed_tools`, named `<server>__<tool>`.
 * A call runs by its server's approval mode: `auto` at once (with MCP_TOOL_TIMEOUT_MS, its result capped at
 * MCP_RESULT_MAX_CHARS), `ask` waits for the chat owner, `deny` is answered with an error result. Whatever goes wrong
 * with a tool (an error, a timeout, an unreachable server) becomes an error result the model sees. Built-in tools
 * (builtin-tools.ts: `search_chats`) join the set by the turn's model config and run here, under the same modes.
 */
import { z } from 'zod';
import type { Db } from '../../functions/core/db';
import { keyRing } from '../../functions/core/keyring';
import type { Settings } from '../../functions/core/settings';
import type { ModelTool } from '../llm/model';
import { capResult, errorResult, toolName } from '../llm/tools';
import type { PendingToolCall, ToolCallPart, ToolResultPart } from '../../functions/core/chats';
import { McpCallError, McpClients, type McpEndpoint } from './mcp-client';
import { mcpUrlProblem, openServerHeaders, toolConfigCached } from '../../functions/core/mcp-config';
import { ServerHeaders, type ToolApproval } from '../../functions/core/shapes/tools';
import type { Turn } from './turn';
import { log } from '../../functions/core/log';
import { builtinDefs, runBuiltin, searchChatsTool, type BuiltinTool } from './builtin-tools';

/** A tool as a turn offers it. */
export interface ToolDef {
  /** `<server>__<tool>`: what the model calls it. */
  name: string;
  server: string;
  /** The server's own name for it. */
  tool: string;
  description: string;
  inputSchema: Record<string, unknown>;
  approval: ToolApproval;
  /** Pinned by the chat's agent (else the deployment's). */
  pinned: boolean;
  /** The MCP server that runs it; null for a built-in tool. */
  endpoint: McpEndpoint | null;
  builtin?: BuiltinTool;
}

export interface ToolSet {
  tools: Map<string, ToolDef>;
  /** Servers whose tools are not offered, and why (unreachable, refused by the URL rules or the allowlist). */
  unavailable: { server: string; reason: string }[];
}

/** A pinned `mcp_server` resource: its source names it, its body is `{url, headers?, allowed_tools?}`. */
export interface PinnedResource {
  source: string;
  body: unknown;
}
const PinnedBody = z.object({ url: z.string().max(2048), headers: ServerHeaders.optional(), allowed_tools: z.array(z.string()).optional() });

/** The namespace of a pinned server: its source's file name, in the characters a tool name takes. */
export function pinnedServerName(source: string): string {
  const base = (source.split(/[\\/]/).at(-1) ?? source).replace(/\.[A-Za-z0-9]+$/, '');
  const name = base.replace(/[^A-Za-z0-9_-]/g, '_').replace(/_{2,}/g, '_').slice(0, 32);
  return name === '' || name === '_' ? 'agent' : name;
}

export interface ToolboxDeps {
  db: () => Db;
  settings: Settings;
  encryptionKey: string;
  chatId: () => string;
}

const LIST_TIMEOUT_MS = 10_000;

export class Toolbox {
  readonly mcp: McpClients;
  private readonly sets = new WeakMap<Turn, Promise<ToolSet>>();

  constructor(private readonly deps: ToolboxDeps) {
    this.mcp = new McpClients({ toolsTtlMs: deps.settings.MCP_TOOLS_TTL_MS });
  }

  /** The turn's tools, resolved once per turn (a continued turn after an eviction resolves them again). */
  forTurn(turn: Turn, pinned: readonly PinnedResource[]): Promise<ToolSet> {
    let set = this.sets.get(turn);
    if (!set) {
      const builtins = builtinDefs(turn.resolved.config.options.search_chats, turn.ownerId);
      set = this.resolve(pinned, turn.abort.signal).then((s) => {
        for (const b of builtins) {
          const t = searchChatsTool;
          s.tools.set(t.name, { name: t.name, server: 'builtin', tool: t.name, description: t.description, inputSchema: t.inputSchema, approval: b.approval, pinned: false, endpoint: null, builtin: b.builtin });
        }
        return s;
      });
      this.sets.set(turn, set);
    }
    return set;
  }

  /** The chat's tools now. Listing a server that cannot be reached leaves it out (named in `unavailable`). */
  async resolve(pinned: readonly PinnedResource[], signal: AbortSignal): Promise<ToolSet> {
    const s = this.deps.settings;
    const config = await toolConfigCached(this.deps.db());
    const servers: { name: string; approval: ToolApproval; allowed: string[] | null; pinned: boolean; endpoint: McpEndpoint }[] = [];
    const unavailable: ToolSet['unavailable'] = [];
    for (const srv of config.servers) {
      const problem = mcpUrlProblem(srv.url, s, null);
      if (problem !== null) {
        unavailable.push({ server: srv.name, reason: `The URL of the MCP server ${srv.name} ${problem}.` });
        continue;
      }
      const endpoint: McpEndpoint = {
        key: `srv:${srv.version}`,
        name: srv.name,
        url: srv.url,
        headers: async () => await openServerHeaders(await keyRing(this.deps.encryptionKey), srv),
      };
      servers.push({ name: srv.name, approval: srv.approval, allowed: srv.allowedTools, pinned: false, endpoint });
    }
    for (const r of pinned) {
      const name = pinnedServerName(r.source);
      const body = PinnedBody.safeParse(r.body);
      if (!body.success) {
        unavailable.push({ server: name, reason: `The pinned MCP server ${name} is not {url, headers?}.` });
        continue;
      }
      if (servers.some((x) => x.name === name)) {
        unavailable.push({ server: name, reason: `Another MCP server is named ${name}.` });
        continue;
      }
      const problem = mcpUrlProblem(body.data.url, s, config.allowedHosts);
      if (problem !== null) {
        unavailable.push({ server: name, reason: `The URL of the pinned MCP server ${name} ${problem}.` });
        continue;
      }
      const headers = body.data.headers ?? {};
      const endpoint: McpEndpoint = { key: `pin:${JSON.stringify([body.data.url, headers])}`, name, url: body.data.url, headers: () => Promise.resolve(headers) };
      // An agent's servers are not the owners' to vouch for: every call waits for the chat owner's approval.
      servers.push({ name, approval: 'ask', allowed: body.data.allowed_tools ?? null, pinned: true, endpoint });
    }
    const tools = new Map<string, ToolDef>();
    const listed = await Promise.allSettled(servers.map((x) => this.mcp.tools(x.endpoint, signal, Math.min(LIST_TIMEOUT_MS, s.MCP_TOOL_TIMEOUT_MS))));
    servers.forEach((x, i) => {
      const r = listed[i];
      if (r?.status !== 'fulfilled') {
        unavailable.push({ server: x.name, reason: r?.reason instanceof McpCallError ? r.reason.message : `The tools of the MCP server ${x.name} could not be listed.` });
        return;
      }
      for (const t of r.value) {
        if (x.allowed !== null && !x.allowed.includes(t.name)) continue;
        const name = toolName(x.name, t.name);
        if (tools.has(name)) continue;
        tools.set(name, {
          name,
          server: x.name,
          tool: t.name,
          description: t.description ?? '',
          inputSchema: t.inputSchema,
          approval: x.approval,
          pinned: x.pinned,
          endpoint: x.endpoint,
        });
      }
    });
    return { tools, unavailable };
  }

  /** The tools in the model's terms. */
  static forModel(set: ToolSet): ModelTool[] {
    return [...set.tools.values()].map((t) => ({ name: t.name, description: t.description, inputSchema: t.inputSchema }));
  }

  /**
   * Runs a step's calls by their approval modes: `auto` ones concurrently, `deny` and unknown ones answered with an
   * error at once, `ask` ones left waiting. Each result is reported (`emit`) when it is known; the results come back
   * in call order.
   */
  async runStep(
    calls: readonly ToolCallPart[],
    set: ToolSet,
    invalid: ReadonlyMap<string, string>,
    signal: AbortSignal,
    emit: (r: ToolResultPart) => void,
  ): Promise<{ results: ToolResultPart[]; pending: PendingToolCall[] }> {
    const pending: PendingToolCall[] = [];
    const runs = calls.map(async (c): Promise<ToolResultPart | null> => {
      const def = set.tools.get(c.name);
      let r: ToolResultPart;
      const bad = invalid.get(c.tool_call_id);
      if (bad !== undefined) r = failed(c, bad);
      else if (!def) r = failed(c, unknownTool(c.name, set));
      else if (def.approval === 'deny' && def.builtin) r = failed(c, `This model config does not allow the tool ${c.name} (its options.search_chats is "deny").`);
      else if (def.approval === 'deny') r = failed(c, `The deployment does not allow the tool ${c.name} (its server's tool_approval is "deny").`);
      else if (def.approval === 'ask') {
        pending.push({ tool_call_id: c.tool_call_id, name: c.name, args: c.args, server: def.server });
        return null;
      } else r = await this.run(c, def, signal);
      emit(r);
      return r;
    });
    const done = await Promise.all(runs);
    // Pending calls in call order, whatever order the loop above saw them in.
    const order = new Map(calls.map((c, i) => [c.tool_call_id, i]));
    pending.sort((a, b) => (order.get(a.tool_call_id) ?? 0) - (order.get(b.tool_call_id) ?? 0));
    return { results: done.filter((r): r is ToolResultPart => r !== null), pending };
  }

  /** Runs a call the chat owner approved (or answers that its tool is gone). */
  async runApproved(call: PendingToolCall, set: ToolSet, signal: AbortSignal): Promise<ToolResultPart> {
    const part: ToolCallPart = { type: 'tool_call', tool_call_id: call.tool_call_id, name: call.name, args: call.args };
    const def = set.tools.get(call.name);
    return def ? await this.run(part, def, signal) : failed(part, unknownTool(call.name, set));
  }

  /** One call on its server, bounded by the timeout and the turn's signal. */
  private async run(c: ToolCallPart, def: ToolDef, signal: AbortSignal): Promise<ToolResultPart> {
    const s = this.deps.settings;
    try {
      if (def.builtin) return await runBuiltin(this.deps.db(), def.builtin, c);
      if (!def.endpoint) return failed(c, `There is no tool named ${c.name}.`);
      const r = await this.mcp.call(def.endpoint, def.tool, c.args, signal, s.MCP_TOOL_TIMEOUT_MS);
      return { type: 'tool_result', tool_call_id: c.tool_call_id, name: c.name, result: capResult(r, s.MCP_RESULT_MAX_CHARS), is_error: r.isError === true };
    } catch (e) {
      if (!(e instanceof McpCallError)) {
        log('error', 'tool call failed', { chat_id: this.deps.chatId(), tool: c.name, error: String(e) });
      }
      return failed(c, e instanceof McpCallError ? e.message : 'The tool call failed.');
    }
  }
}

function failed(c: { tool_call_id: string; name: string }, message: string): ToolResultPart {
  return { type: 'tool_result', tool_call_id: c.tool_call_id, name: c.name, result: errorResult(message), is_error: true };
}

function unknownTool(name: string, set: ToolSet): string {
  const down = set.unavailable.find((u) => name.startsWith(`${u.server}__`));
  return down ? `The tool ${name} is not available: ${down.reason}` : `There is no tool named ${name}.`;
}
