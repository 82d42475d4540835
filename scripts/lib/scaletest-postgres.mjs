// @ts-check
/**
 * The scale test's Postgres figures: a connection for the counters with pg_stat_statements reset and a baseline at
 * the start, and at the end the report (statements by name and per turn, round trips, table counters, sessions),
 * read once the statistics have settled.
 */
import pg from 'pg';
import { round2 } from './scaletest-report.mjs';
import { TAG, groupByName, loadGeneratedStatements, pgSnapshot, tableDelta } from './scaletest-sql.mjs';

/** @param {unknown} e */
const why = (e) => (e instanceof Error ? e.message : String(e));

/**
 * @typedef {object} PgCounters
 * @property {pg.Client} db
 * @property {import('./scaletest-sql.mjs').PgSnapshot} start  the baseline (no statements: they were just reset)
 * @property {number} startMessages  the rows of chat_messages at the start
 * @property {string} version
 */

/**
 * Connects, resets pg_stat_statements and takes the baseline; on failure, says why instead (with the server's
 * version when it got that far).
 * @param {string} pgUrl
 * @param {(line: string) => void} log
 * @returns {Promise<{ counters: PgCounters, reason: null } | { counters: null, reason: string, version: string | null }>}
 */
export async function openPgCounters(pgUrl, log) {
  /** @type {pg.Client | null} */
  let db = null;
  /** @type {string | null} */
  let version = null;
  try {
    db = new pg.Client({ connectionString: pgUrl, application_name: 'chatd-scaletest' });
    // A lost connection (the stack went down) must not crash the run; the figures will say so.
    db.on('error', (e) => {
      log(`lost the Postgres counters connection: ${e.message}`);
    });
    await db.connect();
    version = String((await db.query(`${TAG} SHOW server_version`)).rows[0]?.server_version ?? '');
    await db.query(`${TAG} CREATE EXTENSION IF NOT EXISTS pg_stat_statements`);
    await db.query(`${TAG} SELECT pg_stat_statements_reset()`);
    const start = await pgSnapshot(db, { statements: false });
    return { counters: { db, start, startMessages: await messageRows(db), version }, reason: null };
  } catch (e) {
    await db?.end().catch(() => undefined);
    return { counters: null, reason: `Postgres counters unavailable: ${why(e)}`, version };
  }
}

/**
 * The rows of chat_messages now: a count, exact at once, where pg_stat_user_tables waits for backends to flush.
 * @param {pg.Client} db
 */
async function messageRows(db) {
  return Number((await db.query(`${TAG} SELECT count(*) AS n FROM chat_messages`)).rows[0]?.n ?? 0);
}

/**
 * The end snapshot, once table counters have caught up. They reach pg_stat_user_tables when a backend flushes them:
 * at most ~10 s after it goes idle, or when it exits. pg_stat_statements is immediate, so wait (25 s at most) until
 * the tables show at least the rows known to be there (messages: the rows added to chat_messages, which counts the
 * messages CreateChat inserts too, or InsertChatMessages' rows if more; chats rows UPDATEd by status changes), and
 * two reads agree.
 * @param {PgCounters} counters
 * @param {import('./scaletest-sql.mjs').GeneratedStatement[]} generated
 */
async function settledSnapshot({ db, start, startMessages }, generated) {
  let end = await pgSnapshot(db);
  const added = (await messageRows(db)) - startMessages;
  const floor = () => {
    const g = groupByName(end.statements, generated);
    const inserted = g.find((x) => x.name === 'InsertChatMessages')?.rows ?? 0;
    return { ins: Math.max(inserted, added), upd: g.filter((x) => x.updatesChats).reduce((u, x) => u + x.rows, 0) };
  };
  const waitUntil = Date.now() + 25_000;
  for (let prev = ''; Date.now() < waitUntil; ) {
    const d = tableDelta(end.tables, start.tables);
    const sig = JSON.stringify(d);
    const f = floor();
    if ((d.chat_messages?.ins ?? 0) >= f.ins && (d.chats?.upd ?? 0) >= f.upd && sig === prev) return { end, settled: true };
    prev = sig;
    await new Promise((r) => setTimeout(r, 1000));
    end = await pgSnapshot(db);
  }
  return { end, settled: false };
}

/**
 * Postgres' figures for the run. Read before the checks after the run add their own statements.
 * @param {PgCounters} counters
 * @param {{ root: string, turnsRun: number }} run  turnsRun: turns completed or failed
 * @returns {Promise<Record<string, unknown>>}
 */
export async function postgresReport(counters, { root, turnsRun }) {
  const { start, version } = counters;
  const generated = loadGeneratedStatements(root);
  const { end, settled } = await settledSnapshot(counters, generated);
  const named = groupByName(end.statements, generated).sort((x, y) => Number(y.toplevel) - Number(x.toplevel) || y.calls - x.calls);
  const top = named.filter((g) => g.toplevel);
  const delta = tableDelta(end.tables, start.tables);
  const messageInserts = delta.chat_messages?.ins ?? 0;
  const chatsUpdates = delta.chats?.upd ?? 0;
  // UPDATEs of chats by other statements (status changes, ...) are counted by pg_stat_statements' rows;
  // what remains is what InsertChatMessages' updated_chat CTE did.
  const otherChatUpdates = named.filter((g) => g.updatesChats).reduce((s, g) => s + g.rows, 0);
  return {
    serverVersion: version,
    countersSettled: settled,
    statements: named.map((g) => ({
      name: g.name,
      known: g.known,
      toplevel: g.toplevel,
      calls: g.calls,
      perTurn: turnsRun ? round2(g.calls / turnsRun) : null,
      rows: g.rows,
      totalMs: round2(g.totalMs),
      meanMs: g.calls ? Math.round((g.totalMs / g.calls) * 1000) / 1000 : null,
    })),
    // Round trips: statements clients sent. Nested ones (foreign-key checks) run inside them, time included.
    totalCalls: top.reduce((s, g) => s + g.calls, 0),
    totalCallsPerTurn: turnsRun ? round2(top.reduce((s, g) => s + g.calls, 0) / turnsRun) : null,
    totalDbMs: round2(top.reduce((s, g) => s + g.totalMs, 0)),
    nestedCalls: named.filter((g) => !g.toplevel).reduce((s, g) => s + g.calls, 0),
    tables: delta,
    messageInserts,
    chatsUpdates,
    chatsUpdatesByOtherStatements: otherChatUpdates,
    chatsUpdatesPerMessageInsert: messageInserts ? Math.round((chatsUpdates / messageInserts) * 1000) / 1000 : null,
    insertCausedChatsUpdates: chatsUpdates - otherChatUpdates,
    insertCausedChatsUpdatesPerMessageInsert: messageInserts ? Math.round(((chatsUpdates - otherChatUpdates) / messageInserts) * 1000) / 1000 : null,
    sessionsOpened: end.sessions !== null && start.sessions !== null ? end.sessions - start.sessions : null,
    sessionsOpenedPerTurn: end.sessions !== null && start.sessions !== null && turnsRun ? round2((end.sessions - start.sessions) / turnsRun) : null,
    backendsAtEnd: end.backends,
  };
}
