/**
 * Agents, their context resources, and the chats' pinned copies (docs/chats.md, "Pinned context"), against the
 * shared test database, the real chat objects and the mock model.
 */
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { EMPTY_AGGREGATE_HASH, MAX_CONTEXT_BODY_BYTES, MAX_CONTEXT_RESOURCES } from '../../functions/services/agent-context';
import { call, ErrorBody, makeOwner, makeUser, roomOf, sdk, streamOf, testDb, testEnv, watch, within } from './helpers';

// ------------------------------------------------------------------ helpers

const hex = (b: ArrayBuffer) => Array.from(new Uint8Array(b), (x) => x.toString(16).padStart(2, '0')).join('');
const sha256 = async (s: string) => hex(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(s)));
/** The documented content hash, computed independently of the implementation. */
const expectedHash = (canonicalBody: string, status: string, kind: string) => sha256(`${canonicalBody}\n${status}\n${kind}`);
const expectedAggregate = async (rows: { source: string; content_hash: string }[]) =>
  sha256(rows.map((r) => `${r.source}:${r.content_hash}`).sort().join('\n'));

interface Res {
  source: string;
  body_kind: string;
  body?: unknown;
  status: string;
  error?: string | null;
  source_path?: string | null;
}
const res = (source: string, body_kind: string, body: unknown, extra: Partial<Res> = {}): Res => ({
  source,
  body_kind,
  body,
  status: 'ok',
  ...extra,
});

const NewAgent = z.object({ id: z.uuid(), name: z.string(), token: z.string() }).strict();

async function makeAgent(ownerToken?: string) {
  const token = ownerToken ?? (await makeOwner()).token;
  const name = `agent-${crypto.randomUUID().slice(0, 8)}`;
  const r = await call('POST', '/api/v2/agents', { token, body: { name } });
  expect(r.status, r.text).toBe(201);
  return NewAgent.parse(r.body);
}

async function push(agentToken: string, resources: unknown[]) {
  return await call('PUT', '/api/v2/agents/me/context', { token: agentToken, body: { resources } });
}
async function mustPush(agentToken: string, resources: unknown[]) {
  const r = await push(agentToken, resources);
  expect(r.status, r.text).toBe(204);
}

const StoredRow = z.object({
  source: z.string(),
  body_kind: z.string(),
  body: z.unknown(),
  status: z.string(),
  error: z.string().nullable(),
  source_path: z.string().nullable(),
  content_hash: z.string(),
  size_bytes: z.coerce.number(),
  created_at: z.coerce.date(),
  updated_at: z.coerce.date(),
});
const COLS = 'source, body_kind, body, status, error, source_path, content_hash, size_bytes, created_at, updated_at';

async function sql(text: string, values: unknown[] = []) {
  const db = testDb();
  try {
    return (await db.query(text, values)).rows;
  } finally {
    await db.close();
  }
}
const agentRows = async (agentId: string) =>
  z.array(StoredRow).parse(await sql(`SELECT ${COLS} FROM workspace_agent_context_resources WHERE workspace_agent_id = $1 ORDER BY source COLLATE "C"`, [agentId]));
const pinRows = async (chatId: string) =>
  z.array(StoredRow).parse(await sql(`SELECT ${COLS} FROM chat_context_resources WHERE chat_id = $1 ORDER BY source COLLATE "C"`, [chatId]));
const snapshot = async (agentId: string) =>
  z
    .array(z.object({ aggregate_hash: z.string(), version: z.coerce.number() }))
    .parse(await sql('SELECT aggregate_hash, version FROM workspace_agent_context_snapshots WHERE workspace_agent_id = $1', [agentId]))[0];
const chatState = async (chatId: string) =>
  z
    .object({ context_aggregate_hash: z.string().nullable(), context_dirty_since: z.coerce.date().nullable() })
    .parse((await sql('SELECT context_aggregate_hash, context_dirty_since FROM chats WHERE id = $1', [chatId]))[0]);

const ContextBody = z
  .object({
    resources: z.array(
      z
        .object({
          source: z.string(),
          body_kind: z.string(),
          body: z.unknown(),
          status: z.string(),
          error: z.string().nullable(),
          source_path: z.string().nullable(),
          content_hash: z.string(),
          size_bytes: z.number(),
        })
        .strict(),
    ),
    dirty: z.boolean(),
    changes: z.array(z.object({ source: z.string(), change: z.enum(['added', 'removed', 'modified']) }).strict()),
  })
  .strict();

async function getContext(chatId: string, token: string) {
  const r = await call('GET', `/api/v2/chats/${chatId}/context`, { token });
  expect(r.status, r.text).toBe(200);
  return ContextBody.parse(r.body);
}

/** Starts a chat with an agent and waits for its first turn. */
async function agentChat(token: string, agentId: string, content = `hi ${crypto.randomUUID()}`, extra: { model_config_id?: string } = {}) {
  const chat = await sdk(token).createChat({ content, agent_id: agentId, ...extra });
  await roomOf(chat.id).idle();
  return chat;
}

const Recorded = z.array(z.object({ body: z.looseObject({ messages: z.array(z.object({ role: z.string(), content: z.unknown() }).loose()) }) }).loose());
/** The system prompt of the newest model request whose messages contain `marker`. */
async function systemPromptFor(marker: string): Promise<unknown> {
  const all = Recorded.parse(await (await fetch(`${testEnv.MOCK_LLM_URL}/__mock/requests`)).json());
  const mine = all.filter((r) => JSON.stringify(r.body.messages).includes(marker));
  const first = mine.at(-1)?.body.messages[0];
  return first?.role === 'system' ? first.content : undefined;
}

const sample = (): Res[] => [
  res('AGENTS.md', 'instruction_file', '# Rules\nBe brief.', { source_path: '/repo/AGENTS.md' }),
  res('skills/deploy/SKILL.md', 'skill', { text: 'Deploy with make deploy.', meta: { b: 1, a: 2 } }),
  res('.mcp.json', 'mcp_config', { servers: { git: { command: 'git-mcp' } } }),
  res('hooks/pre.sh', 'hook', null, { status: 'unreadable', error: 'permission denied' }),
];

// ------------------------------------------------------------------ agents and tokens

describe('agents and their tokens', () => {
  it('an owner creates an agent; the token is shown once and only the hash of its secret is stored', async () => {
    const owner = await makeOwner();
    const r = await call('POST', '/api/v2/agents', { token: owner.token, body: { name: '  build box  ' } });
    expect(r.status, r.text).toBe(201);
    const agent = NewAgent.parse(r.body);
    expect(agent.name).toBe('build box');
    const m = /^([a-z0-9]{10})-([A-Za-z0-9]{22})$/.exec(agent.token);
    expect(m).not.toBeNull();
    const rows = z
      .array(z.object({ token_id: z.string(), hashed_secret: z.string(), created_by: z.string(), name: z.string() }).loose())
      .parse(await sql('SELECT * FROM workspace_agents WHERE id = $1', [agent.id]));
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ token_id: m?.[1], hashed_secret: await sha256(m?.[2] ?? ''), created_by: owner.user.id, name: 'build box' });
    expect(JSON.stringify(rows[0])).not.toContain(m?.[2] ?? 'secret');
  });

  it('a member gets 403, no token 401, a bad body 400, and no agent is written', async () => {
    const member = await makeUser();
    const owner = await makeOwner();
    const name = `nope-${crypto.randomUUID()}`;
    expect((await call('POST', '/api/v2/agents', { token: member.token, body: { name } })).status).toBe(403);
    expect((await call('POST', '/api/v2/agents', { body: { name } })).status).toBe(401);
    for (const body of [{}, { name: '' }, { name: '   ' }, { name: 'x'.repeat(129) }, { name, extra: 1 }, { name: 5 }]) {
      const r = await call('POST', '/api/v2/agents', { token: owner.token, body });
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(ErrorBody.parse(r.body).validations?.length).toBeGreaterThan(0);
    }
    expect(await sql('SELECT 1 FROM workspace_agents WHERE name = $1 OR created_by = $2', [name, member.user.id])).toEqual([]);
    expect(await sql('SELECT 1 FROM workspace_agents WHERE created_by = $1', [owner.user.id])).toEqual([]);
  });

  it('agent tokens are refused on user routes and user tokens on agent routes', async () => {
    const owner = await makeOwner();
    const agent = await makeAgent(owner.token);
    for (const [method, path] of [
      ['GET', '/api/v2/users/me'],
      ['GET', '/api/v2/chats'],
      ['POST', '/api/v2/agents'],
    ] as const) {
      const r = await call(method, path, { token: agent.token, body: method === 'POST' ? { name: 'x' } : undefined });
      expect(r.status, `${method} ${path}`).toBe(401);
    }
    const resources = [res('AGENTS.md', 'instruction_file', 'x')];
    const secret = agent.token.split('-')[1] ?? '';
    const wrongSecret = `${agent.token.split('-')[0] ?? ''}-${secret.replace(/^./, (ch) => (ch === 'A' ? 'B' : 'A'))}`;
    for (const opts of [
      { token: owner.token },
      { token: (await makeUser()).token },
      { token: 'not-a-token' },
      { token: wrongSecret },
      { cookie: `session_token=${owner.token}` },
      { cookie: `session_token=${agent.token}` },
      {},
    ]) {
      const r = await call('PUT', '/api/v2/agents/me/context', { ...opts, body: { resources } });
      expect(r.status, JSON.stringify(opts)).toBe(401);
      ErrorBody.parse(r.body);
    }
    expect(await agentRows(agent.id)).toEqual([]);
    await mustPush(agent.token, resources);
    expect(await agentRows(agent.id)).toHaveLength(1);
  });
});

// ------------------------------------------------------------------ the agent's set

describe('PUT /agents/me/context', () => {
  it('stores the set with hashes computed by the server; the next push replaces it (last writer wins)', async () => {
    const agent = await makeAgent();
    await mustPush(agent.token, sample());
    const rows = await agentRows(agent.id);
    expect(rows.map((r) => r.source)).toEqual(['.mcp.json', 'AGENTS.md', 'hooks/pre.sh', 'skills/deploy/SKILL.md']);
    const agents = rows.find((r) => r.source === 'AGENTS.md');
    expect(agents).toMatchObject({ body_kind: 'instruction_file', body: '# Rules\nBe brief.', status: 'ok', error: null, source_path: '/repo/AGENTS.md' });
    expect(agents?.content_hash).toBe(await expectedHash(JSON.stringify('# Rules\nBe brief.'), 'ok', 'instruction_file'));
    expect(agents?.size_bytes).toBe(JSON.stringify('# Rules\nBe brief.').length);
    // The canonical JSON sorts keys at every level.
    const skill = rows.find((r) => r.source === 'skills/deploy/SKILL.md');
    const canonicalSkill = '{"meta":{"a":2,"b":1},"text":"Deploy with make deploy."}';
    expect(skill?.content_hash).toBe(await expectedHash(canonicalSkill, 'ok', 'skill'));
    expect(skill?.size_bytes).toBe(canonicalSkill.length);
    const hook = rows.find((r) => r.source === 'hooks/pre.sh');
    expect(hook).toMatchObject({ body: null, status: 'unreadable', error: 'permission denied', size_bytes: 0 });
    expect(hook?.content_hash).toBe(await expectedHash('', 'unreadable', 'hook'));
    // An absent body is SQL NULL, not a JSON null.
    expect(await sql('SELECT source FROM workspace_agent_context_resources WHERE workspace_agent_id = $1 AND body IS NULL', [agent.id])).toEqual([
      { source: 'hooks/pre.sh' },
    ]);
    const snap1 = await snapshot(agent.id);
    expect(snap1).toEqual({ aggregate_hash: await expectedAggregate(rows), version: 1 });

    // A second push: one kept, one changed, two gone, one new. Exactly the new set remains.
    await mustPush(agent.token, [res('AGENTS.md', 'instruction_file', '# Rules\nBe brief.'), res('CLAUDE.md', 'instruction_file', 'new'), res('.mcp.json', 'mcp_config', {})]);
    const after = await agentRows(agent.id);
    expect(after.map((r) => [r.source, r.body])).toEqual([
      ['.mcp.json', {}],
      ['AGENTS.md', '# Rules\nBe brief.'],
      ['CLAUDE.md', 'new'],
    ]);
    expect(after.find((r) => r.source === 'AGENTS.md')?.source_path).toBeNull();
    expect(await snapshot(agent.id)).toEqual({ aggregate_hash: await expectedAggregate(after), version: 2 });
  });

  it('a body over the limit is stored as oversize, without its body, with its size; one at the limit is kept', async () => {
    const agent = await makeAgent();
    const atLimit = 'a'.repeat(MAX_CONTEXT_BODY_BYTES - 2); // + 2 quotes = the limit exactly
    const over = 'b'.repeat(MAX_CONTEXT_BODY_BYTES - 1);
    await mustPush(agent.token, [res('big.md', 'instruction_file', over), res('fits.md', 'instruction_file', atLimit)]);
    const [big, fits] = await agentRows(agent.id);
    expect(big).toMatchObject({ source: 'big.md', status: 'oversize', body: null, size_bytes: MAX_CONTEXT_BODY_BYTES + 1 });
    expect(big?.error).toMatch(/limit/);
    // The hash covers the whole body although it is not kept: a change to an oversize file is still a change.
    expect(big?.content_hash).toBe(await expectedHash(JSON.stringify(over), 'oversize', 'instruction_file'));
    expect(fits).toMatchObject({ source: 'fits.md', status: 'ok', body: atLimit, size_bytes: MAX_CONTEXT_BODY_BYTES });
    expect(await sql('SELECT source FROM workspace_agent_context_resources WHERE workspace_agent_id = $1 AND body IS NULL', [agent.id])).toEqual([
      { source: 'big.md' },
    ]);
  });

  const bad: [string, unknown][] = [
    ['an unknown body_kind', { resources: [res('a', 'readme', 'x')] }],
    ['an unknown status', { resources: [{ ...res('a', 'skill', 'x'), status: 'fine' }] }],
    ['an empty source', { resources: [res('', 'skill', 'x')] }],
    ['a source over 1024 characters', { resources: [res('s'.repeat(1025), 'skill', 'x')] }],
    ['a duplicate source', { resources: [res('a', 'skill', 'x'), res('a', 'hook', 'y')] }],
    [`more than ${MAX_CONTEXT_RESOURCES} resources`, { resources: Array.from({ length: MAX_CONTEXT_RESOURCES + 1 }, (_, i) => res(`r${i}`, 'command', 'x')) }],
    ['an unknown field', { resources: [{ ...res('a', 'skill', 'x'), owner: 'me' }] }],
    ['no resources field', {}],
    ['status ok without a body', { resources: [{ source: 'a', body_kind: 'skill', status: 'ok' }] }],
    ['a NUL in a source', { resources: [res('a\u0000b', 'skill', 'x')] }],
    ['a NUL in a body', { resources: [res('a', 'skill', { text: 'x\u0000y' })] }],
    ['an unpaired surrogate in a body', { resources: [res('a', 'skill', '\ud800')] }],
    ['a body nested too deep', { resources: [res('a', 'mcp_config', JSON.parse('['.repeat(100) + ']'.repeat(100)))] }],
  ];
  it.each(bad)('rejects %s with 400 and validations, and writes nothing', async (_what, body) => {
    const agent = await makeAgent();
    await mustPush(agent.token, sample());
    const before = { rows: await agentRows(agent.id), snap: await snapshot(agent.id) };
    const r = await call('PUT', '/api/v2/agents/me/context', { token: agent.token, body });
    expect(r.status, r.text).toBe(400);
    expect(ErrorBody.parse(r.body).validations?.length).toBeGreaterThan(0);
    expect(await agentRows(agent.id)).toEqual(before.rows);
    expect(await snapshot(agent.id)).toEqual(before.snap);
  });

  it('rejects a body that is not JSON with 400', async () => {
    const agent = await makeAgent();
    const r = await call('PUT', '/api/v2/agents/me/context', { token: agent.token, rawBody: '{"resources": [', headers: { 'content-type': 'application/json' } });
    expect(r.status).toBe(400);
    expect(await snapshot(agent.id)).toBeUndefined();
  });
});

// ------------------------------------------------------------------ hydration

describe('a chat created with agent_id', () => {
  it('pins exactly the agent rows, in the creation transaction, and stamps the aggregate hash', async () => {
    const agent = await makeAgent();
    await mustPush(agent.token, sample());
    // Agents are deployment-wide: a member who does not own the agent may use it.
    const u = await makeUser();
    const chat = await agentChat(u.token, agent.id);
    expect(chat.agent_id).toBe(agent.id);
    expect(Object.keys(chat)).not.toContain('context_aggregate_hash');
    const pinned = await pinRows(chat.id);
    expect(pinned).toEqual(await agentRows(agent.id));
    expect(pinned).toHaveLength(4);
    expect(await chatState(chat.id)).toEqual({ context_aggregate_hash: (await snapshot(agent.id))?.aggregate_hash, context_dirty_since: null });
    const ctx = await getContext(chat.id, u.token);
    expect(ctx.dirty).toBe(false);
    expect(ctx.changes).toEqual([]);
    expect(ctx.resources.map((r) => r.source)).toEqual(pinned.map((r) => r.source));
    expect(ctx.resources.find((r) => r.source === 'skills/deploy/SKILL.md')).toEqual({
      source: 'skills/deploy/SKILL.md',
      body_kind: 'skill',
      body: { text: 'Deploy with make deploy.', meta: { a: 2, b: 1 } },
      status: 'ok',
      error: null,
      source_path: null,
      content_hash: pinned.find((r) => r.source === 'skills/deploy/SKILL.md')?.content_hash,
      size_bytes: pinned.find((r) => r.source === 'skills/deploy/SKILL.md')?.size_bytes,
    });
  });

  it('an unknown agent_id is 400 "Unknown agent." and creates nothing', async () => {
    const u = await makeUser();
    const r = await call('POST', '/api/v2/chats', { token: u.token, body: { content: 'hello', agent_id: crypto.randomUUID() } });
    expect(r.status).toBe(400);
    const err = ErrorBody.parse(r.body);
    expect(err.message).toBe('Unknown agent.');
    expect(err.validations?.map((v) => v.field)).toEqual(['agent_id']);
    expect((await call('GET', '/api/v2/chats', { token: u.token })).body).toEqual([]);
  });

  it('an agent that never pushed pins an empty set at the empty hash; an empty push changes nothing', async () => {
    const agent = await makeAgent();
    const u = await makeUser();
    const chat = await agentChat(u.token, agent.id);
    expect(await pinRows(chat.id)).toEqual([]);
    expect(await chatState(chat.id)).toEqual({ context_aggregate_hash: EMPTY_AGGREGATE_HASH, context_dirty_since: null });
    await mustPush(agent.token, []);
    expect(await snapshot(agent.id)).toEqual({ aggregate_hash: EMPTY_AGGREGATE_HASH, version: 1 });
    expect((await chatState(chat.id)).context_dirty_since).toBeNull();
    await mustPush(agent.token, [res('AGENTS.md', 'instruction_file', 'x')]);
    expect((await chatState(chat.id)).context_dirty_since).not.toBeNull();
    expect((await getContext(chat.id, u.token)).changes).toEqual([{ source: 'AGENTS.md', change: 'added' }]);
  });

  it('keeps its pin when the agent replaces its set and when the agent is deleted', async () => {
    const agent = await makeAgent();
    await mustPush(agent.token, sample());
    const u = await makeUser();
    const chat = await agentChat(u.token, agent.id);
    const pinned = await pinRows(chat.id);
    expect(pinned.map((r) => r.source)).toEqual(['.mcp.json', 'AGENTS.md', 'hooks/pre.sh', 'skills/deploy/SKILL.md']);

    await mustPush(agent.token, [res('OTHER.md', 'instruction_file', 'entirely new')]);
    expect(await pinRows(chat.id)).toEqual(pinned);

    await sql('DELETE FROM workspace_agents WHERE id = $1', [agent.id]);
    expect(await agentRows(agent.id)).toEqual([]); // the agent's own rows go with it
    expect(await snapshot(agent.id)).toBeUndefined();
    expect(await pinRows(chat.id)).toEqual(pinned);
    // With the agent gone: no changes to report, dirty as stored (the push above marked it).
    const ctx = await getContext(chat.id, u.token);
    expect(ctx).toMatchObject({ dirty: true, changes: [] });
    expect(ctx.resources.map((r) => r.source)).toEqual(pinned.map((r) => r.source));
    // Nothing to re-pin from: 409, and the pin is kept.
    const put = await call('PUT', `/api/v2/chats/${chat.id}/context`, { token: u.token });
    expect(put.status).toBe(409);
    expect(await pinRows(chat.id)).toEqual(pinned);
    // The chat itself goes on.
    const msg = await call('POST', `/api/v2/chats/${chat.id}/messages`, { token: u.token, body: { content: 'still here' } });
    expect(msg.status).toBe(201);
    expect(await roomOf(chat.id).idle()).toBe('waiting');
  });

  it('loses its pin with it when deleted (ON DELETE CASCADE)', async () => {
    const agent = await makeAgent();
    await mustPush(agent.token, sample());
    const u = await makeUser();
    const chat = await agentChat(u.token, agent.id);
    expect(await pinRows(chat.id)).toHaveLength(4);
    expect((await call('DELETE', `/api/v2/chats/${chat.id}`, { token: u.token })).status).toBe(204);
    expect(await sql('SELECT 1 FROM chat_context_resources WHERE chat_id = $1', [chat.id])).toEqual([]);
    expect(await agentRows(agent.id)).toHaveLength(4);
  });
});

// ------------------------------------------------------------------ dirty

describe('dirty marking', () => {
  it("only a changed aggregate hash marks the agent's live chats; archived chats and other agents' chats stay clean", async () => {
    const owner = await makeOwner();
    const a = await makeAgent(owner.token);
    const b = await makeAgent(owner.token);
    await mustPush(a.token, sample());
    await mustPush(b.token, sample());
    const u = await makeUser();
    const live = await agentChat(u.token, a.id);
    const archived = await agentChat(u.token, a.id);
    expect((await call('PATCH', `/api/v2/chats/${archived.id}`, { token: u.token, body: { archived: true } })).status).toBe(200);
    const other = await agentChat(u.token, b.id);

    // The same set again, in another order with other key order: same hash, nothing marked.
    const same = sample().reverse();
    same[2] = res('skills/deploy/SKILL.md', 'skill', { meta: { a: 2, b: 1 }, text: 'Deploy with make deploy.' });
    await mustPush(a.token, same);
    expect(await snapshot(a.id)).toMatchObject({ version: 2 });
    expect((await chatState(live.id)).context_dirty_since).toBeNull();
    expect((await getContext(live.id, u.token)).dirty).toBe(false);

    // A changed set: only the live chat of this agent.
    await mustPush(a.token, [...sample(), res('NEW.md', 'instruction_file', 'n')]);
    const first = (await chatState(live.id)).context_dirty_since;
    expect(first).not.toBeNull();
    expect((await chatState(archived.id)).context_dirty_since).toBeNull();
    expect((await chatState(other.id)).context_dirty_since).toBeNull();
    expect((await getContext(live.id, u.token)).dirty).toBe(true);

    // Another change keeps the time it first became dirty.
    await mustPush(a.token, [res('NEW.md', 'instruction_file', 'n2')]);
    expect((await chatState(live.id)).context_dirty_since).toEqual(first);
  });

  it("sends a context_dirty notice to the chat's stream subscribers", async () => {
    const agent = await makeAgent();
    await mustPush(agent.token, sample());
    const u = await makeUser();
    const chat = await agentChat(u.token, agent.id);
    const s = streamOf(chat.id, u.token);
    const seen = watch(s);
    try {
      await s.until((x) => x.connected, within);
      await mustPush(agent.token, sample()); // unchanged: no notice
      await mustPush(agent.token, sample().slice(1));
      await s.until(() => seen.events.some((e) => e.type === 'context_dirty'), within);
      expect(seen.events.filter((e) => e.type === 'context_dirty')).toEqual([{ type: 'context_dirty', chat_id: chat.id }]);
    } finally {
      await s.close();
    }
  });
});

// ------------------------------------------------------------------ changes and re-pin

describe('GET and PUT /chats/{id}/context', () => {
  it('reports every kind of change between the pin and the agent set', async () => {
    const agent = await makeAgent();
    await mustPush(agent.token, [
      res('same.md', 'instruction_file', 'unchanged'),
      res('body.md', 'instruction_file', 'old text'),
      res('status.md', 'instruction_file', 'readable'),
      res('kind.md', 'command', 'run it'),
      res('gone.md', 'skill', 'bye'),
      res('path.md', 'skill', 'same body', { source_path: '/a' }),
    ]);
    const u = await makeUser();
    const chat = await agentChat(u.token, agent.id);
    await mustPush(agent.token, [
      res('same.md', 'instruction_file', 'unchanged'),
      res('body.md', 'instruction_file', 'new text'),
      res('status.md', 'instruction_file', 'readable', { status: 'excluded' }),
      res('kind.md', 'skill', 'run it'),
      res('path.md', 'skill', 'same body', { source_path: '/b' }),
      res('new.md', 'hook', { run: 'x' }),
    ]);
    const ctx = await getContext(chat.id, u.token);
    expect(ctx.dirty).toBe(true);
    expect(ctx.changes).toEqual([
      { source: 'body.md', change: 'modified' },
      { source: 'gone.md', change: 'removed' },
      { source: 'kind.md', change: 'modified' },
      { source: 'new.md', change: 'added' },
      { source: 'status.md', change: 'modified' },
    ]);
    // The pin itself is unchanged.
    expect(ctx.resources.find((r) => r.source === 'body.md')?.body).toBe('old text');
  });

  it('PUT re-pins the agent set in one go and clears dirty', async () => {
    const agent = await makeAgent();
    await mustPush(agent.token, sample());
    const u = await makeUser();
    const chat = await agentChat(u.token, agent.id);
    await mustPush(agent.token, [res('AGENTS.md', 'instruction_file', 'v2'), res('extra.md', 'skill', { content: 'more' })]);
    expect((await getContext(chat.id, u.token)).dirty).toBe(true);

    const r = await call('PUT', `/api/v2/chats/${chat.id}/context`, { token: u.token });
    expect(r.status, r.text).toBe(200);
    const ctx = ContextBody.parse(r.body);
    expect(ctx.dirty).toBe(false);
    expect(ctx.changes).toEqual([]);
    expect(ctx.resources.map((x) => [x.source, x.body])).toEqual([
      ['AGENTS.md', 'v2'],
      ['extra.md', { content: 'more' }],
    ]);
    expect(await pinRows(chat.id)).toEqual(await agentRows(agent.id));
    expect(await chatState(chat.id)).toEqual({ context_aggregate_hash: (await snapshot(agent.id))?.aggregate_hash, context_dirty_since: null });
    expect(await getContext(chat.id, u.token)).toEqual(ctx);
  });

  it('is 404 for another user chat, 409 for a chat without an agent, 400 for a bad id, 401 without a token', async () => {
    const agent = await makeAgent();
    const u = await makeUser();
    const other = await makeUser();
    const chat = await agentChat(u.token, agent.id);
    for (const method of ['GET', 'PUT']) {
      expect((await call(method, `/api/v2/chats/${chat.id}/context`, { token: other.token })).status).toBe(404);
      expect((await call(method, `/api/v2/chats/${crypto.randomUUID()}/context`, { token: u.token })).status).toBe(404);
      expect((await call(method, '/api/v2/chats/not-a-uuid/context', { token: u.token })).status).toBe(400);
      expect((await call(method, `/api/v2/chats/${chat.id}/context`, { token: agent.token })).status).toBe(401);
    }
    const plain = await sdk(u.token).createChat({ content: 'no agent' });
    await roomOf(plain.id).idle();
    expect(await getContext(plain.id, u.token)).toEqual({ resources: [], dirty: false, changes: [] });
    expect((await call('PUT', `/api/v2/chats/${plain.id}/context`, { token: u.token })).status).toBe(409);
  });
});

// ------------------------------------------------------------------ the model

describe('the model', () => {
  it('receives the pinned instruction files, then skills, by source, after the deployment system prompt', async () => {
    const agent = await makeAgent();
    await mustPush(agent.token, [
      res('skills/b/SKILL.md', 'skill', { text: 'Skill B.' }),
      res('AGENTS.md', 'instruction_file', 'Root rules.'),
      res('skills/a/SKILL.md', 'skill', { content: 'Skill A.' }),
      res('.mcp.json', 'mcp_config', { text: 'not for the model' }),
      res('web/AGENTS.md', 'instruction_file', 'Web rules.'),
      res('broken.md', 'instruction_file', 'unreadable text', { status: 'unreadable' }),
      res('huge.md', 'instruction_file', 'h'.repeat(MAX_CONTEXT_BODY_BYTES)),
      res('odd.md', 'instruction_file', { neither: 'text nor content' }),
    ]);
    const u = await makeUser();
    const db = testDb();
    await db.query('INSERT INTO site_configs (key, value) VALUES ($1, $2)', ['system_prompt', JSON.stringify('You are terse.')]);
    const marker = `pinned-${crypto.randomUUID()}`;
    let chatId: string;
    try {
      chatId = (await agentChat(u.token, agent.id, marker)).id;
    } finally {
      await db.query("DELETE FROM site_configs WHERE key = 'system_prompt'", []);
      await db.close();
    }
    const block = (source: string, kind: string, text: string) => `<context source="${source}" kind="${kind}">\n${text}\n</context>`;
    const pinned = [
      block('AGENTS.md', 'instruction_file', 'Root rules.'),
      block('web/AGENTS.md', 'instruction_file', 'Web rules.'),
      block('skills/a/SKILL.md', 'skill', 'Skill A.'),
      block('skills/b/SKILL.md', 'skill', 'Skill B.'),
    ].join('\n\n');
    expect(await systemPromptFor(marker)).toBe(`You are terse.\n\n${pinned}`);

    // The agent drifts: the chat keeps its pin until it is re-pinned.
    await mustPush(agent.token, [res('AGENTS.md', 'instruction_file', 'New rules.')]);
    const second = `second-${crypto.randomUUID()}`;
    expect((await call('POST', `/api/v2/chats/${chatId}/messages`, { token: u.token, body: { content: second } })).status).toBe(201);
    await roomOf(chatId).idle();
    expect(await systemPromptFor(second)).toBe(`You are terse.\n\n${pinned}`);

    expect((await call('PUT', `/api/v2/chats/${chatId}/context`, { token: u.token })).status).toBe(200);
    const third = `third-${crypto.randomUUID()}`;
    expect((await call('POST', `/api/v2/chats/${chatId}/messages`, { token: u.token, body: { content: third } })).status).toBe(201);
    await roomOf(chatId).idle();
    expect(await systemPromptFor(third)).toBe(`You are terse.\n\n${block('AGENTS.md', 'instruction_file', 'New rules.')}`);
  });

  it("stays within a quarter of the model's context and names what it left out", async () => {
    const db = testDb();
    const cfg = z
      .object({ id: z.string() })
      .parse(
        (
          await db.query(
            "INSERT INTO chat_model_configs (provider, model, context_limit, compression_threshold) VALUES ('openai-compat', 'mock-echo', 400, 100) RETURNING id",
            [],
          )
        ).rows[0],
      ).id;
    await db.close();
    // Budget: 400 tokens * 25% * 4 characters = 400 characters.
    const agent = await makeAgent();
    await mustPush(agent.token, [
      res('A.md', 'instruction_file', 'a'.repeat(150)),
      res('B.md', 'instruction_file', 'b'.repeat(150)),
      res('C.md', 'instruction_file', 'short'),
      res('s/SKILL.md', 'skill', 'skill'),
    ]);
    const u = await makeUser();
    const marker = `budget-${crypto.randomUUID()}`;
    await agentChat(u.token, agent.id, marker, { model_config_id: cfg });
    const system = z.string().parse(await systemPromptFor(marker));
    const a = `<context source="A.md" kind="instruction_file">\n${'a'.repeat(150)}\n</context>`;
    const b = `<context source="B.md" kind="instruction_file">\n${'b'.repeat(150)}\n</context>`;
    // A (209 characters) fits; A and B (420) would not. Blocks stop there, in order (C would fit but is not
    // taken out of turn), and the rest are named.
    expect(a.length).toBe(209);
    expect(`${a}\n\n${b}`.length).toBeGreaterThan(400);
    expect(system).toBe(`${a}\n\n(Pinned context left out for lack of room: B.md, C.md, s/SKILL.md.)`);
  });
});
