/**
 * Agents' context resources (instruction files, skills, MCP configs, hooks, commands...) and the per-chat pinned
 * copy of them. See docs/chats.md, "Pinned context".
 *
 * - An agent pushes its whole set (`PUT /agents/me/context`); the set replaces the previous one (last writer
 *   wins) and the server computes every hash. Bodies over MAX_CONTEXT_BODY_BYTES are not stored.
 * - A chat created with `agent_id` copies the agent's rows into `chat_context_resources` in its creation
 *   transaction; `PUT /chats/{id}/context` re-pins. Both go through the chat's object (durable-objects/chat-room.ts).
 * - A push that changes the agent's aggregate hash marks its live chats dirty.
 */
import { z } from 'zod';
import type { Conn, Queryable } from '../core/db';
import { isCleanText, UNCLEAN_TEXT } from '../lib/body-guard';
import { sha256Hex } from '../core/crypto';
import { ApiError, unauthorized, type Validation } from '../core/errors';
import { mintToken } from '../lib/tokens';
import { EMPTY_AGGREGATE_HASH } from '../core/context-hash';

export { EMPTY_AGGREGATE_HASH } from '../core/context-hash';
import {
  deleteAgentContextResources,
  getAgentContextHashes,
  getAgentContextSnapshot,
  getWorkspaceAgentById,
  insertAgentContextResources,
  insertWorkspaceAgent,
  lockWorkspaceAgentForUpdate,
  markAgentChatsContextDirty,
  upsertAgentContextSnapshot,
} from '../../sql/generated/agents.queries';
import {
  getChatContextResources,
  getChatContextState,
} from '../../sql/generated/chat_context.queries';

/** A body larger than this (UTF-8 bytes of its canonical JSON) is stored with status `oversize` and no body. */
export const MAX_CONTEXT_BODY_BYTES = 256 * 1024;
/** At most this many resources in one push (400 beyond). */
export const MAX_CONTEXT_RESOURCES = 500;
/** The bodies one push may store, in total (400 beyond): bounds one statement and one chat's pinned copy. */
export const MAX_CONTEXT_TOTAL_BYTES = 16 * 1024 * 1024;
export const MAX_SOURCE_CHARS = 1024;
/** Nesting deeper than this in a body is refused (400). */
const MAX_BODY_DEPTH = 64;

export const BodyKind = z.enum(['instruction_file', 'skill', 'mcp_config', 'mcp_server', 'plugin', 'hook', 'subagent', 'command']);
export type BodyKind = z.infer<typeof BodyKind>;
export const ResourceStatus = z.enum(['ok', 'oversize', 'unreadable', 'invalid', 'excluded']);
export type ResourceStatus = z.infer<typeof ResourceStatus>;


const cleanText = (max: number) => z.string().max(max).refine(isCleanText, { message: UNCLEAN_TEXT });

export const ContextResourceInput = z
  .object({
    source: cleanText(MAX_SOURCE_CHARS).min(1, { message: 'must not be empty' }),
    body_kind: BodyKind,
    body: z.unknown().optional(),
    status: ResourceStatus,
    error: cleanText(4096).nullable().optional(),
    source_path: cleanText(4096).nullable().optional(),
  })
  .strict()
  .refine((r) => r.status !== 'ok' || (r.body !== undefined && r.body !== null), {
    message: 'a resource with status "ok" needs a body',
    path: ['body'],
  });
export type ContextResourceInput = z.infer<typeof ContextResourceInput>;

export const ContextPush = z
  .object({
    resources: z
      .array(ContextResourceInput)
      .max(MAX_CONTEXT_RESOURCES, { message: `at most ${MAX_CONTEXT_RESOURCES} resources per push` }),
  })
  .strict()
  .superRefine((push, ctx) => {
    const seen = new Set<string>();
    push.resources.forEach((r, i) => {
      if (seen.has(r.source)) ctx.addIssue({ code: 'custom', message: 'duplicate source', path: ['resources', i, 'source'] });
      seen.add(r.source);
    });
  });
export type ContextPush = z.infer<typeof ContextPush>;

class BadBody extends Error {}

/**
 * JSON with object keys sorted (by UTF-16 code units) and no whitespace: equal values give equal text, so
 * equal hashes. Throws BadBody for text Postgres cannot store or nesting beyond MAX_BODY_DEPTH.
 */
export function canonicalJson(value: unknown, depth = 0): string {
  if (depth > MAX_BODY_DEPTH) throw new BadBody(`must not nest deeper than ${MAX_BODY_DEPTH} levels`);
  if (typeof value === 'string') {
    if (!isCleanText(value)) throw new BadBody(UNCLEAN_TEXT);
    return JSON.stringify(value);
  }
  if (value === null || typeof value === 'number' || typeof value === 'boolean') return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map((v) => canonicalJson(v, depth + 1)).join(',')}]`;
  if (typeof value === 'object') {
    const entries = Object.entries(value).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${canonicalJson(k, depth + 1)}:${canonicalJson(v, depth + 1)}`).join(',')}}`;
  }
  throw new BadBody('must be JSON');
}

/** A resource as stored: what the agent sent plus what the server computed. */
export interface PreparedResource {
  source: string;
  body_kind: BodyKind;
  body: unknown;
  status: ResourceStatus;
  error: string | null;
  source_path: string | null;
  content_hash: string;
  size_bytes: number;
}

const utf8 = new TextEncoder();

/**
 * content_hash = SHA-256 (hex) of `<canonical JSON of the body, or '' without one>\n<status>\n<body_kind>`.
 * An oversize body is hashed in full although it is not stored, so a change to it is still a change.
 */
export async function contentHash(canonicalBody: string | null, status: ResourceStatus, kind: BodyKind): Promise<string> {
  return await sha256Hex(`${canonicalBody ?? ''}\n${status}\n${kind}`);
}

/** aggregate_hash = SHA-256 (hex) of the `source:content_hash` lines, sorted, joined by "\n". */
export async function aggregateHash(rows: readonly { source: string; content_hash: string }[]): Promise<string> {
  const lines = rows.map((r) => `${r.source}:${r.content_hash}`).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  return await sha256Hex(lines.join('\n'));
}

/** Hashes, sizes and the oversize rule; 400 with validations for bodies Postgres could not store. */
export async function prepareResources(push: ContextPush): Promise<{ rows: PreparedResource[]; aggregateHash: string }> {
  const validations: Validation[] = [];
  const rows: PreparedResource[] = [];
  let stored = 0;
  for (const [i, r] of push.resources.entries()) {
    let canonical: string | null = null;
    try {
      canonical = r.body === undefined || r.body === null ? null : canonicalJson(r.body);
    } catch (e) {
      if (!(e instanceof BadBody)) throw e;
      validations.push({ field: `resources.${i}.body`, detail: e.message });
      continue;
    }
    const size = canonical === null ? 0 : utf8.encode(canonical).byteLength;
    const oversize = size > MAX_CONTEXT_BODY_BYTES;
    const status: ResourceStatus = oversize ? 'oversize' : r.status;
    if (!oversize) stored += size;
    rows.push({
      source: r.source,
      body_kind: r.body_kind,
      body: oversize || canonical === null ? null : r.body,
      status,
      error: r.error ?? (oversize ? `The body is ${size} bytes; the limit is ${MAX_CONTEXT_BODY_BYTES}.` : null),
      source_path: r.source_path ?? null,
      content_hash: await contentHash(canonical, status, r.body_kind),
      size_bytes: size,
    });
  }
  if (stored > MAX_CONTEXT_TOTAL_BYTES) {
    validations.push({ field: 'resources', detail: `the stored bodies must total at most ${MAX_CONTEXT_TOTAL_BYTES} bytes (got ${stored})` });
  }
  if (validations.length) throw new ApiError(400, 'Validation failed.', undefined, validations);
  return { rows, aggregateHash: await aggregateHash(rows) };
}

// ------------------------------------------------------------------ agents

export interface NewAgent {
  id: string;
  name: string;
  /** `<id>-<secret>`, shown once. */
  token: string;
}

/** Creates an agent; only the hash of its token's secret is stored. */
export async function createAgent(conn: Queryable, createdBy: string, name: string): Promise<NewAgent> {
  const t = await mintToken();
  const [row] = await insertWorkspaceAgent.run({ name, created_by: createdBy, token_id: t.id, hashed_secret: t.hashedSecret }, conn);
  if (!row) throw new Error('insert returned no agent');
  return { id: row.id, name: row.name, token: t.token };
}

export async function agentExists(conn: Queryable, id: string): Promise<boolean> {
  return (await getWorkspaceAgentById.run({ id }, conn)).length > 0;
}

export interface PushOutcome {
  aggregateHash: string;
  version: number;
  changed: boolean;
  /** Chats that became dirty with this push. */
  dirtyChatIds: string[];
}

/**
 * Replaces the agent's set in one transaction (last writer wins). Pushes of one agent serialise on its row;
 * when the aggregate hash changed, its live chats pinned at another hash are marked dirty in one statement.
 */
export async function pushAgentContext(conn: Conn, agentId: string, prepared: { rows: PreparedResource[]; aggregateHash: string }): Promise<PushOutcome> {
  return await conn.inTx(async (tx) => {
    const [agent] = await lockWorkspaceAgentForUpdate.run({ id: agentId }, tx);
    if (!agent) throw unauthorized('The agent no longer exists.');
    // Read after the lock, in its own statement: it sees the last push that committed.
    const [previous] = await getAgentContextSnapshot.run({ workspace_agent_id: agentId }, tx);
    await deleteAgentContextResources.run({ workspace_agent_id: agentId }, tx);
    if (prepared.rows.length) {
      await insertAgentContextResources.run({ workspace_agent_id: agentId, resources: JSON.stringify(prepared.rows) }, tx);
    }
    const [snap] = await upsertAgentContextSnapshot.run({ workspace_agent_id: agentId, aggregate_hash: prepared.aggregateHash }, tx);
    if (!snap) throw new Error('snapshot upsert returned no row');
    const changed = (previous?.aggregate_hash ?? EMPTY_AGGREGATE_HASH) !== prepared.aggregateHash;
    const dirty = changed
      ? await markAgentChatsContextDirty.run({ workspace_agent_id: agentId, aggregate_hash: prepared.aggregateHash }, tx)
      : [];
    return { aggregateHash: snap.aggregate_hash, version: Number(snap.version), changed, dirtyChatIds: dirty.map((d) => d.id) };
  });
}

// ------------------------------------------------------------------ a chat's pin


export const ChangeKind = z.enum(['added', 'removed', 'modified']);

/** A pinned resource has exactly the shape of the agent's resource it was copied from. */
export type ChatContextResource = PreparedResource;

export interface ChatContext {
  resources: ChatContextResource[];
  dirty: boolean;
  changes: { source: string; change: z.infer<typeof ChangeKind> }[];
}

const ResourceRow = z.object({
  source: z.string(),
  body_kind: BodyKind,
  body: z.unknown(),
  status: ResourceStatus,
  error: z.string().nullable(),
  source_path: z.string().nullable(),
  content_hash: z.string(),
  size_bytes: z.union([z.string(), z.number()]).transform(Number),
});
const StateRow = z.object({ agent_id: z.string().nullable(), context_dirty_since: z.coerce.date().nullable() });
const HashRow = z.object({ agent_id: z.string(), source: z.string().nullable(), content_hash: z.string().nullable() });

const byCodeUnits = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/**
 * The chat's pinned resources, whether it is dirty (as stored), and how its pin differs from the agent's
 * current set. When the agent no longer exists (or the chat has none), `changes` is empty.
 */
export async function getChatContext(conn: Conn, chatId: string): Promise<ChatContext | null> {
  return await conn.inTx(async (tx) => {
    const [stateRaw] = await getChatContextState.run({ id: chatId }, tx);
    if (!stateRaw) return null;
    const state = StateRow.parse(stateRaw);
    const resources = (await getChatContextResources.run({ chat_id: chatId }, tx)).map((r) => ResourceRow.parse(r));
    const changes: ChatContext['changes'] = [];
    if (state.agent_id) {
      const current = (await getAgentContextHashes.run({ workspace_agent_id: state.agent_id }, tx)).map((r) => HashRow.parse(r));
      if (current.length > 0) {
        const now = new Map<string, string>();
        for (const r of current) if (r.source !== null && r.content_hash !== null) now.set(r.source, r.content_hash);
        const pinned = new Map(resources.map((r) => [r.source, r.content_hash]));
        for (const [source, hash] of now) {
          const was = pinned.get(source);
          if (was === undefined) changes.push({ source, change: 'added' });
          else if (was !== hash) changes.push({ source, change: 'modified' });
        }
        for (const source of pinned.keys()) if (!now.has(source)) changes.push({ source, change: 'removed' });
        changes.sort((a, b) => byCodeUnits(a.source, b.source));
      }
    }
    return { resources, dirty: state.context_dirty_since !== null, changes };
  });
}
