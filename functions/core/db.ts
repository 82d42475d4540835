import { Client, neonConfig } from '@neondatabase/serverless';
import { DbUnavailableError } from './errors';

/** What the generated query functions (pgtyped) need from a connection. */
export interface Queryable {
  query(text: string, values: unknown[]): Promise<{ rows: unknown[]; rowCount: number }>;
}

export interface DbSettings {
  url: string;
  /** `host:port` of the local WebSocket-to-TCP proxy; empty for Neon. */
  wsProxy: string;
  /** The local proxy's per-run token (it refuses connections without it); empty when there is none. */
  wsProxyToken?: string;
  connectTimeoutMs: number;
  statementTimeoutMs: number;
  /**
   * Close the connection after this long without a statement (0: keep it). Durable Objects use it so that
   * thousands of idle chats do not pin thousands of Postgres connections; the next call reconnects.
   */
  idleCloseMs?: number;
  /**
   * Run statements with parameters as named prepared statements (one parse and plan per statement per connection,
   * and only Bind/Execute on the wire after that). For long-lived connections: the Durable Objects'. Neon's pooler
   * (PgBouncer >= 1.21 with max_prepared_statements) keeps protocol-level prepared statements per server connection.
   */
  prepare?: boolean;
}

/** Prepared names already computed, by text: the texts are the generated queries', a bounded set. */
const names = new Map<string, string>();
const MAX_NAMES = 512;

/**
 * A statement's prepared name: stable for the same text (FNV-1a of it, and its length). Memoized: hashing the
 * longest statement (InsertChatMessages, ~9 KB) on every call was ~1% of a turn's Worker CPU.
 */
function statementName(text: string): string {
  const known = names.get(text);
  if (known !== undefined) return known;
  const name = fnv1a(text);
  if (names.size >= MAX_NAMES) names.clear();
  names.set(text, name);
  return name;
}

function fnv1a(text: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return `s${h.toString(16)}_${text.length}`;
}

/** A prepared statement the server no longer accepts (the schema changed under it, or the session lost it). */
function stalePrepared(e: unknown): boolean {
  const code = sqlState(e);
  return code === '26000' || (code === '0A000' && e instanceof Error && e.message.includes('cached plan must not change result type'));
}

let configuredProxy: string | undefined;

/** Connections opened by this isolate (Worker requests and Durable Objects alike), for tests and metrics. */
export const dbStats = { connects: 0 };

/**
 * The Neon driver keeps its transport settings in module scope. They are the same for every request of
 * a deployment (taken from env), so setting them once per isolate is safe.
 */
function configureDriver(wsProxy: string, token: string): void {
  const key = `${wsProxy}\n${token}`;
  if (configuredProxy === key) return;
  configuredProxy = key;
  if (wsProxy) {
    // The token rides in the query string: the driver builds this URL and offers no way to add a header.
    const auth = token ? `&token=${encodeURIComponent(token)}` : '';
    neonConfig.wsProxy = (host, port) => `${wsProxy}/v2?address=${host}:${port}${auth}`;
    neonConfig.useSecureWebSocket = false;
    neonConfig.pipelineTLS = false;
    // 'password' pipelining breaks trust auth ("invalid frontend message type 112").
    neonConfig.pipelineConnect = false;
  } else {
    neonConfig.wsProxy = (host) => `${host}/v2`;
    neonConfig.useSecureWebSocket = true;
    neonConfig.pipelineTLS = false;
    neonConfig.pipelineConnect = 'password';
  }
}

// SQLSTATEs that mean "the database cannot serve us right now", not "your statement is wrong": connection
// failures, too many clients, shutdown/restart, and a statement the server cancelled at its statement_timeout.
const UNAVAILABLE_SQLSTATE = /^(08...|53300|57P01|57P02|57P03|57014)$/;
// A transaction that lost a race with another (serialization failure, deadlock): the same write may succeed again.
const RETRYABLE_SQLSTATE = /^(40001|40P01)$/;

function sqlState(e: unknown): string | undefined {
  if (typeof e === 'object' && e !== null && 'code' in e && typeof e.code === 'string' && /^[0-9A-Z]{5}$/.test(e.code)) {
    return e.code;
  }
  return undefined;
}

/** True when the error is Postgres refusing the statement (constraint, syntax...), not a transport failure. */
export function isPostgresError(e: unknown): boolean {
  const code = sqlState(e);
  return code !== undefined && !UNAVAILABLE_SQLSTATE.test(code);
}

/**
 * True when the write may succeed if tried again later: the database was unreachable or did not answer (the
 * statement may or may not have committed: only idempotent writes may be retried), or lost a race.
 */
export function isTransient(e: unknown): boolean {
  if (e instanceof DbUnavailableError) return true;
  const code = sqlState(e);
  return code !== undefined && (UNAVAILABLE_SQLSTATE.test(code) || RETRYABLE_SQLSTATE.test(code));
}

/** The SQLSTATE of a Postgres error, if it is one. */
export function pgErrorCode(e: unknown): string | undefined {
  return isPostgresError(e) ? sqlState(e) : undefined;
}

function withTimeout<T>(p: Promise<T>, ms: number, onTimeout: () => void, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      onTimeout();
      reject(new DbUnavailableError(`${what} timed out after ${ms} ms`));
    }, ms);
  });
  return Promise.race([p, timeout]).finally(() => {
    if (timer !== undefined) clearTimeout(timer);
  });
}

/**
 * A lazily opened Postgres connection with connect and statement timeouts, a transaction helper that
 * nests, and errors that mean "database unreachable" turned into DbUnavailableError (503).
 *
 * One instance per request in the Worker; one long-lived instance per Durable Object. Statements issued
 * while a transaction is open on another async path wait for it, so concurrent callers on one connection
 * never leak statements into each other's transaction.
 */
export class Db implements Queryable {
  private client: Client | null = null;
  private connecting: Promise<Client> | null = null;
  private txLock: Promise<void> = Promise.resolve();

  constructor(private readonly settings: DbSettings) {
    configureDriver(settings.wsProxy, settings.wsProxyToken ?? '');
  }

  private async connection(): Promise<Client> {
    if (this.client) return this.client;
    if (!this.settings.url) throw new DbUnavailableError('DATABASE_URL is not set');
    this.connecting ??= this.connect().finally(() => {
      this.connecting = null;
    });
    return await this.connecting;
  }

  /**
   * Opens a connection within the connect timeout. "Too many clients" and "starting up" are retried with a
   * short jittered pause until the timeout, since connections free up as idle objects close theirs.
   */
  private async connect(): Promise<Client> {
    const deadline = Date.now() + this.settings.connectTimeoutMs;
    for (let attempt = 0; ; attempt++) {
      const client = new Client({ connectionString: this.settings.url });
      const forget = () => {
        // A broken connection (Postgres restart, network loss) is dropped; the next call reconnects.
        if (this.client === client) this.client = null;
      };
      client.on('error', forget);
      // A server that vanishes without a word (a crash, an immediate shutdown) only ends the socket: a statement sent
      // on such a client would wait for the statement timeout.
      client.on('end', forget);
      try {
        await withTimeout(
          client.connect(),
          Math.max(1, deadline - Date.now()),
          () => void client.end().catch(() => undefined),
          'connecting to the database',
        );
        this.client = client;
        dbStats.connects += 1;
        return client;
      } catch (e) {
        // No end() here: the socket is already gone (a timeout ended it above), and ending a client whose
        // socket closed makes the driver throw from inside its own event handler.
        const code = sqlState(e);
        const pause = Math.min(1000, 50 * 2 ** attempt) * (0.5 + Math.random());
        if ((code === '53300' || code === '57P03') && Date.now() + pause < deadline) {
          await new Promise((r) => setTimeout(r, pause));
          continue;
        }
        throw e instanceof DbUnavailableError ? e : new DbUnavailableError('cannot connect to the database', e);
      }
    }
  }

  private busy = 0;
  private idleTimer: ReturnType<typeof setTimeout> | undefined;

  /** Runs fn as activity on this connection; when all activity ends, the idle close is armed. */
  private async active<T>(fn: () => Promise<T>): Promise<T> {
    this.busy += 1;
    if (this.idleTimer !== undefined) {
      clearTimeout(this.idleTimer);
      this.idleTimer = undefined;
    }
    try {
      return await fn();
    } finally {
      this.busy -= 1;
      const idleMs = this.settings.idleCloseMs ?? 0;
      if (this.busy === 0 && idleMs > 0) {
        this.idleTimer = setTimeout(() => {
          this.idleTimer = undefined;
          if (this.busy === 0 && this.client) this.drop(this.client);
        }, idleMs);
      }
    }
  }

  private async run(client: Client, text: string, values: unknown[]) {
    const named = this.settings.prepare === true && values.length > 0;
    try {
      return await withTimeout(
        named ? client.query({ name: statementName(text), text, values }) : client.query(text, values),
        this.settings.statementTimeoutMs,
        () => {
          this.drop(client);
        },
        'a database statement',
      );
    } catch (e) {
      if (e instanceof DbUnavailableError) throw e;
      if (sqlState(e) !== undefined && isPostgresError(e)) throw e;
      // Anything else here is a transport failure: the connection is unusable.
      this.drop(client);
      throw new DbUnavailableError('lost the database connection', e);
    }
  }

  private drop(client: Client): void {
    if (this.client === client) this.client = null;
    void client.end().catch(() => undefined);
  }

  /** Runs one statement outside any transaction (waits for an open one to finish). */
  async query(text: string, values: unknown[] = []): Promise<{ rows: unknown[]; rowCount: number }> {
    return await this.active(async () => {
      await this.txLock;
      const client = await this.connection();
      let r;
      try {
        r = await this.run(client, text, values);
      } catch (e) {
        if (!stalePrepared(e)) throw e;
        // A migration changed a table under a prepared statement: prepare it again on a fresh connection, once.
        this.drop(client);
        r = await this.run(await this.connection(), text, values);
      }
      return { rows: r.rows, rowCount: r.rowCount ?? 0 };
    });
  }

  /**
   * Runs fn in one transaction; commits when it resolves, rolls back when it throws.
   * A nested call (fn calling inTx on the Tx it was given) reuses the outer transaction.
   */
  async inTx<T>(fn: (tx: Tx) => Promise<T>): Promise<T> {
    return await this.active(() => this.transaction(fn));
  }

  private async transaction<T>(fn: (tx: Tx) => Promise<T>): Promise<T> {
    const previous = this.txLock;
    let release: () => void = () => {};
    this.txLock = new Promise<void>((r) => (release = r));
    try {
      await previous;
      const client = await this.connection();
      await this.run(client, 'BEGIN', []);
      const tx = new Tx(async (text, values) => {
        const r = await this.run(client, text, values);
        return { rows: r.rows, rowCount: r.rowCount ?? 0 };
      });
      try {
        const result = await fn(tx);
        await this.run(client, 'COMMIT', []);
        return result;
      } catch (e) {
        await this.run(client, 'ROLLBACK', []).catch(() => {
          this.drop(client);
        });
        throw e;
      }
    } finally {
      release();
    }
  }

  /** Closes the connection, if one was opened. */
  async close(): Promise<void> {
    if (this.idleTimer !== undefined) clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
    const c = this.client ?? (this.connecting ? await this.connecting.catch(() => null) : null);
    this.client = null;
    if (c) await c.end().catch(() => undefined);
  }
}

/** A connection inside an open transaction. */
export class Tx implements Queryable {
  constructor(private readonly exec: (text: string, values: unknown[]) => Promise<{ rows: unknown[]; rowCount: number }>) {}

  async query(text: string, values: unknown[] = []): Promise<{ rows: unknown[]; rowCount: number }> {
    return await this.exec(text, values);
  }

  /** Nested transactions reuse this one. */
  async inTx<T>(fn: (tx: Tx) => Promise<T>): Promise<T> {
    return await fn(this);
  }
}

/** Either a plain connection or one inside a transaction: both can start (or join) a transaction. */
export type Conn = Db | Tx;
