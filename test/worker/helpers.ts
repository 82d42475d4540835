/** Test helpers for the Worker suites: HTTP calls, fresh databases, and row factories. */
import { createExecutionContext, waitOnExecutionContext } from 'cloudflare:test';
import { env, exports } from 'cloudflare:workers';
import {
  createClient,
  fetchTransport,
  textOf as contentText,
  type Chat,
  type ChatdClient,
  type ChatStream,
  type ClientOptions,
  type Message,
  type paths,
  type StreamEvent,
  type StreamOptions,
} from '@chatd-edge/sdk';
import { z } from 'zod';
import worker from '../../functions/index';
import { dbSettings, settings } from '../../functions/env';
import { Db, type Queryable } from '../../functions/core/db';
import { createKey, createUser, type User } from '../../functions/services/users';
import type { Role } from '../../functions/authz';

const TestEnv = z.object({
  DATABASE_URL: z.string(),
  PG_ADMIN_URL: z.string(),
  PG_TEMPLATE: z.string(),
  SILENT_PORT: z.coerce.number(),
  MOCK_LLM_URL: z.string(),
  MOCK_MODEL_CONFIG_ID: z.string(),
  MCP_SERVER_URL: z.string(),
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

/** The Worker's fetch: the exported handler, or, with `e`, the handler with another env (another database). */
export function workerFetch(e?: Env): (req: Request) => Promise<Response> {
  if (!e) return (req) => exports.default.fetch(req);
  return async (req) => {
    const ctx = createExecutionContext();
    const res = await worker.fetch(req, e, ctx);
    await waitOnExecutionContext(ctx);
    return res;
  };
}

/**
 * The SDK, calling the Worker in this isolate: typed calls, and streams over sockets upgraded by the Worker's fetch.
 * `env` points it at another database.
 */
export function sdk(token?: string, o: Partial<ClientOptions> & { env?: Env } = {}): ChatdClient {
  const { env: e, ...rest } = o;
  const fetch = rest.fetch ?? workerFetch(e);
  return createClient({ baseUrl: 'http://chatd.test', fetch, transport: fetchTransport(fetch), ...(token !== undefined ? { token } : {}), ...rest });
}

type NewChat = paths['/api/v2/chats']['post']['requestBody']['content']['application/json'];

/** Raw HTTP, for what a typed client cannot send: malformed bodies, missing headers, exact status codes of bad input. */
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

/**
 * The sockets a chat's object still holds open. Revoking a credential or access closes the matching sockets inside the
 * request that revokes it (the contract's "within a second"), with no timer or poll: right after that request
 * answers, the count no longer has them. Tests check that instead of timing the client's close, which a loaded
 * machine delays.
 */
export async function openSockets(chatId: string): Promise<number> {
  return (await roomOf(chatId).stats()).sockets;
}

/** Starts a chat as `token` (through the SDK) and waits for its first turn to end. */
export async function startChat(token: string, content: NewChat['content'] = 'hello world', extra: Omit<NewChat, 'content'> = {}): Promise<Chat> {
  const chat = await sdk(token).createChat({ content, ...extra });
  await roomOf(chat.id).idle();
  return chat;
}

/** Every live message of a chat, through the API. */
export async function messagesOf(chatId: string, token: string): Promise<Message[]> {
  return (await sdk(token).listMessages(chatId, { limit: 200 })).messages;
}

export const textOf = (m: { content: Message['content'] }): string => contentText(m.content);

/** A chat's stream through the SDK, for tests: no pings, quick reconnects. */
export function streamOf(chatId: string, token: string, o: StreamOptions = {}): ChatStream {
  return sdk(token).stream(chatId, { pingIntervalMs: 0, reconnect: { baseMs: 1, maxMs: 10 }, ...o });
}

/** Waits on a stream's state for at most 10 s (tests fail rather than hang). */
export const within = { timeoutMs: 10_000 };

/**
 * What a stream received, frame by frame, before the SDK's resume rules (the server's own sequence, for order
 * checks), and the statuses it went through.
 */
export function watch(s: ChatStream) {
  const seen = {
    frames: [] as (readonly StreamEvent[])[],
    events: [] as StreamEvent[],
    statuses: [] as string[],
    /** Whether the stream saw a turn end: an idle status after the last `running`. */
    turnEnded(): boolean {
      const lastRunning = seen.statuses.lastIndexOf('running');
      return Math.max(seen.statuses.lastIndexOf('waiting'), seen.statuses.lastIndexOf('error')) > lastRunning;
    },
  };
  s.on('frame', (f) => {
    seen.frames.push(f.events);
    seen.events.push(...f.events);
  });
  s.on('status', (e) => seen.statuses.push(e.status.status));
  return seen;
}

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
