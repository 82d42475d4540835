/**
 * Migration 000006_agent_context up and down with data in its tables, against a real (scratch) Postgres:
 * down removes everything it created and keeps everything older; up again restores the same schema.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appliedVersions, loadMigrations, migrateDown, migrateUp } from '../../scripts/lib/migrate.mjs';
import { startScratchPostgres } from '../../scripts/lib/scratch-db.mjs';

const VERSION = 6;
const NEW_TABLES = ['chat_context_resources', 'workspace_agent_context_resources', 'workspace_agent_context_snapshots', 'workspace_agents'];
const NEW_TYPES = ['workspace_agent_context_body_kind', 'workspace_agent_context_resource_status'];

let server: Awaited<ReturnType<typeof startScratchPostgres>>;
let db: pg.Client;

beforeAll(async () => {
  server = await startScratchPostgres('migrate-context-test');
  const admin = new pg.Client(server.url);
  await admin.connect();
  await admin.query('CREATE DATABASE migrate_context');
  await admin.end();
  db = new pg.Client(server.urlFor('migrate_context'));
  await db.connect();
});

afterAll(async () => {
  await db.end().catch(() => undefined);
  await server.stop();
});

/** What the migrations can create in `public`, as comparable lists. */
async function schema() {
  const list = async (sql: string) => (await db.query<{ v: string }>(sql)).rows.map((r) => r.v);
  return {
    tables: await list(`SELECT table_name AS v FROM information_schema.tables WHERE table_schema = 'public' ORDER BY table_name`),
    columns: await list(`SELECT concat_ws(' ', table_name, column_name, data_type, udt_name, is_nullable, column_default) AS v
      FROM information_schema.columns WHERE table_schema = 'public' ORDER BY table_name, ordinal_position`),
    indexes: await list(`SELECT indexdef AS v FROM pg_indexes WHERE schemaname = 'public' ORDER BY indexname`),
    constraints: await list(`SELECT concat_ws(' ', conrelid::regclass::text, conname, contype::text, pg_get_constraintdef(oid)) AS v
      FROM pg_constraint WHERE connamespace = 'public'::regnamespace ORDER BY 1`),
    types: await list(`SELECT typname || ' ' || typtype::text AS v FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
      WHERE n.nspname = 'public' AND t.typtype IN ('e', 'd') ORDER BY typname`),
  };
}

async function one<T extends pg.QueryResultRow>(sql: string, values: unknown[] = []): Promise<T> {
  const r = await db.query<T>(sql, values);
  const row = r.rows[0];
  if (!row) throw new Error(`no row: ${sql}`);
  return row;
}

/** Rows of the tables older than 000006, as JSON text, to compare before and after. */
async function olderData(): Promise<string> {
  const users = await db.query('SELECT id, email, username, roles, created_at FROM users ORDER BY id');
  const chats = await db.query('SELECT id, owner_id, title, status, archived, labels, agent_id, created_at, updated_at FROM chats ORDER BY id');
  const messages = await db.query('SELECT id, chat_id, role, content, created_at FROM chat_messages ORDER BY id');
  return JSON.stringify({ users: users.rows, chats: chats.rows, messages: messages.rows });
}

describe(`migration ${VERSION} (agent context)`, () => {
  it('goes up with data in its tables, down to the previous version keeping older data, and up again to the same schema', async () => {
    const migrations = await loadMigrations();
    expect(migrations.find((m) => m.version === VERSION)?.name).toBe('agent_context');

    // The schema and some data as they were before.
    await migrateUp(db, { migrations, target: VERSION - 1 });
    expect((await appliedVersions(db)).at(-1)).toBe(VERSION - 1);
    const before = await schema();
    const user = await one<{ id: string }>(
      "INSERT INTO users (email, username, hashed_password, roles) VALUES ('a@example.com', 'a', 'x', ARRAY['owner']) RETURNING id",
    );
    const agentId = '11111111-1111-4111-8111-111111111111';
    const chat = await one<{ id: string }>("INSERT INTO chats (owner_id, title, agent_id) VALUES ($1, 'with agent', $2) RETURNING id", [user.id, agentId]);
    const plain = await one<{ id: string }>("INSERT INTO chats (owner_id, title) VALUES ($1, 'plain') RETURNING id", [user.id]);
    await db.query(
      `INSERT INTO chat_messages (chat_id, role, content) VALUES ($1, 'user', '[{"type":"text","text":"hi"}]'), ($2, 'user', '[{"type":"text","text":"yo"}]')`,
      [chat.id, plain.id],
    );
    const older = await olderData();

    // Up: the tables, enums and chats columns exist; fill them.
    expect(await migrateUp(db, { migrations, target: VERSION })).toEqual([VERSION]);
    const after = await schema();
    for (const t of NEW_TABLES) expect(after.tables).toContain(t);
    for (const t of NEW_TYPES) expect(after.types).toContain(`${t} e`);
    expect(after.columns).toContain('chats context_aggregate_hash text text YES');
    expect(after.columns).toContain('chats context_dirty_since timestamp with time zone timestamptz YES');
    // The pin references its chat (cascade) and nothing else: no foreign key to the agent.
    const pinFks = after.constraints.filter((c) => c.startsWith('chat_context_resources ') && / f FOREIGN KEY/.test(c));
    expect(pinFks).toEqual([expect.stringMatching(/FOREIGN KEY \(chat_id\) REFERENCES chats\(id\) ON DELETE CASCADE$/)]);
    // chats.agent_id keeps having no foreign key.
    expect(after.constraints.filter((c) => c.startsWith('chats ') && c.includes('(agent_id)'))).toEqual([]);

    await db.query(
      "INSERT INTO workspace_agents (id, name, created_by, token_id, hashed_secret) VALUES ($1, 'box', $2, 'abcdefghij', 'h')",
      [agentId, user.id],
    );
    await db.query(
      `INSERT INTO workspace_agent_context_resources (workspace_agent_id, source, body_kind, body, status, error, source_path, content_hash, size_bytes)
       VALUES ($1, 'AGENTS.md', 'instruction_file', '"rules"', 'ok', NULL, '/r/AGENTS.md', 'h1', 7),
              ($1, 'big.md', 'skill', NULL, 'oversize', 'too big', NULL, 'h2', 999999)`,
      [agentId],
    );
    await db.query("INSERT INTO workspace_agent_context_snapshots (workspace_agent_id, aggregate_hash, version) VALUES ($1, 'agg', 3)", [agentId]);
    await db.query(
      `INSERT INTO chat_context_resources (chat_id, source, body_kind, body, status, error, source_path, content_hash, size_bytes)
       SELECT $1, source, body_kind, body, status, error, source_path, content_hash, size_bytes
       FROM workspace_agent_context_resources WHERE workspace_agent_id = $2`,
      [chat.id, agentId],
    );
    await db.query("UPDATE chats SET context_aggregate_hash = 'agg', context_dirty_since = now() WHERE id = $1", [chat.id]);
    expect((await one<{ n: number }>('SELECT count(*)::int AS n FROM chat_context_resources')).n).toBe(2);
    // The older data is untouched by the up migration.
    expect(await olderData()).toBe(older);

    // Down: everything 000006 created is gone, everything older is as it was.
    expect(await migrateDown(db, { migrations })).toBe(VERSION);
    expect((await appliedVersions(db)).at(-1)).toBe(VERSION - 1);
    const down = await schema();
    for (const t of NEW_TABLES) expect(down.tables).not.toContain(t);
    for (const t of NEW_TYPES) expect(down.types).not.toContain(`${t} e`);
    expect(down.columns.filter((c) => c.startsWith('chats context_'))).toEqual([]);
    expect(down).toEqual(before);
    expect(await olderData()).toBe(older);

    // Up again: the same schema as the first time, with empty new tables and NULL chats columns.
    expect(await migrateUp(db, { migrations, target: VERSION })).toEqual([VERSION]);
    expect(await schema()).toEqual(after);
    for (const t of NEW_TABLES) expect((await one<{ n: number }>(`SELECT count(*)::int AS n FROM ${t}`)).n).toBe(0);
    expect(
      (await db.query('SELECT id FROM chats WHERE context_aggregate_hash IS NOT NULL OR context_dirty_since IS NOT NULL')).rows,
    ).toEqual([]);
    expect(await olderData()).toBe(older);
  });
});
