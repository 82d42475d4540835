/** Test helpers for the Worker suites: HTTP calls, fresh databases, and row factories. */
import { createExecutionContext, waitOnExecutionContext } from 'cloudflare:test';
import { env, exports } from 'cloudflare:workers';
import { z } from 'zod';
import worker from '../../functions/index';
import { dbSettings, settings } from '../../functions/env';
import { Db, type Queryable } from '../../functions/lib/db';
import { createKey, createUser, type User } from '../../functions/services/users';
import type { Role } from '../../functions/authz';

const TestEnv = z.object({
  DATABASE_URL: z.string(),
  PG_ADMIN_URL: z.string(),
  PG_TEMPLATE: z.string(),
  SILENT_PORT: z.coerce.number(),
  MOCK_LLM_URL: z.string(),
  MOCK_MODEL_CONFIG_ID: z.string(),
  PUSH_SERVER_URL: z.string(),
  PG_CONTROL_URL: z.string(),
});
export const testEnv = TestEnv.parse(env);

export interface CallOptions {
  token?: string;
  cookie?: string;
  body?: unknown;
  rawBody?: string;
  headers?: Record<string, string>;
  /** Send to a worker whose env differs (another database). */
  env?: Env;
}

export interface CallResult {
  status: number;
  body: unknown;
  text: string;
  headers: Headers;
}

/** Calls the Worker: through SELF, or through the exported handler with another env. */
export async function call(method: string, path: string, opts: CallOptions = {}): Promise<CallResult> {
  const headers = new Headers(opts.headers);
  if (opts.token !== undefined) headers.set('authorization', `Bearer ${opts.token}`);
  if (opts.cookie !== undefined) headers.set('cookie', opts.cookie);
  let body: string | undefined;
  if (opts.rawBody !== undefined) body = opts.rawBody;
  else if (opts.body !== undefined) {
    body = JSON.stringify(opts.body);
    if (!headers.has('content-type')) headers.set('content-type', 'application/json');
  }
  const url = `http://chatd.test${path}`;
  let res: Response;
  if (opts.env) {
    const ctx = createExecutionContext();
    res = await worker.fetch(new Request(url, { method, headers, body }), opts.env, ctx);
    await waitOnExecutionContext(ctx);
  } else {
    res = await exports.default.fetch(url, { method, headers, body });
  }
  const text = await res.text();
  let parsed: unknown = null;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    parsed = null;
  }
  return { status: res.status, body: parsed, text, headers: res.headers };
}

/** The standard error body, parsed (fails the test when the shape is wrong). */
export const ErrorBody = z
  .object({
    message: z.string().min(1),
    detail: z.string().optional(),
    validations: z.array(z.object({ field: z.string(), detail: z.string() })).optional(),
  })
  .strict();

/** A connection to the suite's shared database. */
export function testDb(e: Env = env): Db {
  return new Db(dbSettings(e));
}

/** A new, empty, fully migrated database and an env that points the Worker at it. */
export async function freshWorld(): Promise<{ env: Env; db: Db; url: string }> {
  const name = `w_${crypto.randomUUID().replaceAll('-', '')}`;
  const admin = new Db({ ...dbSettings(env), url: testEnv.PG_ADMIN_URL });
  try {
    await admin.query(`CREATE DATABASE ${name} TEMPLATE ${testEnv.PG_TEMPLATE}`);
  } finally {
    await admin.close();
  }
  const url = testEnv.DATABASE_URL.replace(/\/[^/]+$/, `/${name}`);
  const worldEnv: Env = { ...env, DATABASE_URL: url };
  return { env: worldEnv, db: testDb(worldEnv), url };
}

/** An env whose database refuses connections. */
export function unreachableDbEnv(): Env {
  return { ...env, DATABASE_URL: 'postgres://postgres@127.0.0.1:1/none', PG_CONNECT_TIMEOUT_MS: '2000' };
}

/** An env whose database accepts the connection and then never answers. */
export function hangingDbEnv(): Env {
  return {
    ...env,
    DATABASE_URL: `postgres://postgres@127.0.0.1:${testEnv.SILENT_PORT}/none`,
    PG_CONNECT_TIMEOUT_MS: '500',
  };
}

let seq = 0;
/** A unique suffix for emails and usernames. */
export function uniq(): string {
  seq += 1;
  return `${Date.now().toString(36)}${seq}${crypto.randomUUID().slice(0, 6)}`;
}

export interface TestUser {
  user: User;
  token: string;
  password: string;
}

/** Inserts a user (member by default) with a session, like a row factory. */
export async function makeUser(opts: { roles?: Role[]; db?: Db; env?: Env } = {}): Promise<TestUser> {
  const e = opts.env ?? env;
  const db = opts.db ?? testDb(e);
  const u = uniq();
  const password = `pw-${u}`;
  try {
    const user = await createUser(db, settings(e), {
      email: `user-${u}@example.com`,
      username: `user-${u}`,
      password,
      roles: opts.roles ?? ['member'],
    });
    const key = await createKey(db, user.id, 'session', '', 3600);
    return { user, token: key.key, password };
  } finally {
    if (!opts.db) await db.close();
  }
}

export const makeOwner = (opts: { db?: Db; env?: Env } = {}) => makeUser({ ...opts, roles: ['owner'] });

/** The Durable Object of a chat, for waiting on turns and reading its counters. */
export function roomOf(chatId: string) {
  return env.CHAT_ROOM.getByName(chatId);
}

export const ChatSchema = z
  .object({
    id: z.uuid(),
    owner_id: z.uuid(),
    title: z.string(),
    status: z.enum(['waiting', 'running', 'interrupting', 'error']),
    last_model_config_id: z.uuid().nullable(),
    archived: z.boolean(),
    labels: z.record(z.string(), z.string()),
    agent_id: z.uuid().nullable(),
    last_error: z.object({ message: z.string(), kind: z.string() }).nullable(),
    created_at: z.iso.datetime(),
    updated_at: z.iso.datetime(),
  })
  .strict();

export const MessageSchema = z
  .object({
    id: z.number().int().positive(),
    chat_id: z.uuid(),
    role: z.enum(['system', 'user', 'assistant', 'tool']),
    content: z.array(z.looseObject({ type: z.string() })),
    model_config_id: z.uuid().nullable(),
    created_at: z.iso.datetime(),
    usage: z
      .object({
        input_tokens: z.number(),
        output_tokens: z.number(),
        total_tokens: z.number(),
        reasoning_tokens: z.number(),
        cache_read_tokens: z.number(),
        cache_creation_tokens: z.number(),
        cost: z.string().nullable(),
      })
      .strict()
      .optional(),
  })
  .strict();
export type MessageT = z.infer<typeof MessageSchema>;

/** Starts a chat as `token` and waits for its first turn to end. */
export async function startChat(token: string, content: unknown = 'hello world', extra: Record<string, unknown> = {}) {
  const r = await call('POST', '/api/v2/chats', { token, body: { content, ...extra } });
  if (r.status !== 201) throw new Error(`POST /chats: ${r.status} ${r.text}`);
  const chat = ChatSchema.parse(r.body);
  await roomOf(chat.id).idle();
  return chat;
}

/** Every live message of a chat, through the API. */
export async function messagesOf(chatId: string, token: string): Promise<MessageT[]> {
  const r = await call('GET', `/api/v2/chats/${chatId}/messages?limit=200`, { token });
  if (r.status !== 200) throw new Error(`GET messages: ${r.status} ${r.text}`);
  return z.object({ messages: z.array(MessageSchema) }).strict().parse(r.body).messages;
}

export const textOf = (m: { content: { type: string }[] }) =>
  m.content.map((p) => (p.type === 'text' && 'text' in p && typeof p.text === 'string' ? p.text : '')).join('');

const GateState = z.object({ name: z.string(), open: z.boolean(), waiting: z.number(), arrived: z.number(), timed_out: z.boolean().optional() });

/**
 * A gate of the mock LLM: a turn whose message carries `[[mock gate="<name>"]]` holds its stream at the gate
 * until the test opens it, so a test holds a turn open for exactly as long as it needs, whatever the machine's speed.
 */
export function mockGate(name = `g${crypto.randomUUID().replaceAll('-', '')}`) {
  const url = `${testEnv.MOCK_LLM_URL}/__mock/gates/${name}`;
  return {
    name,
    /** The directive that holds a stream at this gate after `after` content deltas. */
    directive: (after = 0) => `[[mock gate="${name}" gate_after=${after}]]`,
    /** Resolves once `n` model calls wait at the gate (fails after timeoutMs). */
    async waiting(n = 1, timeoutMs = 10_000) {
      const state = GateState.parse(await (await fetch(`${url}?waiting=${n}&timeout_ms=${timeoutMs}`)).json());
      if (state.timed_out) throw new Error(`mock gate ${name}: ${state.waiting} of ${n} calls waiting after ${timeoutMs} ms`);
      return state;
    },
    async open() {
      const r = await fetch(`${url}/open`, { method: 'POST' });
      if (r.status !== 200) throw new Error(`mock gate ${name}: open answered ${r.status}`);
    },
  };
}

/**
 * Resolves once `n` sessions of the database `db` points at wait on a lock (`pg_stat_activity`): a test that holds a
 * row lock knows the statement it raced is blocked on it, without guessing how long that takes.
 */
export async function lockWaiters(db: Queryable, n = 1, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    // Statistics views are snapshotted per transaction: a caller inside one would see the same counts forever.
    await db.query('SELECT pg_stat_clear_snapshot()', []);
    const r = await db.query(
      "SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'",
      [],
    );
    const got = z.object({ n: z.number() }).parse(r.rows[0]).n;
    if (got >= n) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${n} sessions blocked on a lock (${got})`);
    await new Promise((res) => setTimeout(res, 10));
  }
}

/** The tests' own Postgres, stopped and started again: a real outage (every connection to it is cut). */
export const postgres = {
  async pause(): Promise<void> {
    const r = await fetch(`${testEnv.PG_CONTROL_URL}/pause`, { method: 'POST' });
    if (r.status !== 204) throw new Error(`pausing Postgres: ${r.status} ${await r.text()}`);
  },
  async resume(): Promise<void> {
    const r = await fetch(`${testEnv.PG_CONTROL_URL}/resume`, { method: 'POST' });
    if (r.status !== 204) throw new Error(`resuming Postgres: ${r.status} ${await r.text()}`);
  },
};
