// @ts-check
/**
 * Postgres-side measurement for the scale test and the insert benchmark:
 *   - the generated statements (sql/generated/*.queries.ts), with their names from sql/queries/*.sql and the exact
 *     SQL text pgtyped sends, so `pg_stat_statements` entries and `pg_stat_activity` texts can be named;
 *   - snapshots of `pg_stat_statements`, `pg_stat_user_tables` (chats, chat_messages) and `pg_stat_database`.
 * Our own statements start with TAG so they can be told apart from the application's.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { processSQLQueryIR } from '@pgtyped/runtime';

/** Every statement this tool sends starts with this comment; pg_stat_statements keeps comments in its text. */
export const TAG = '/* chatd-scaletest */';

/**
 * @typedef {object} GeneratedStatement
 * @property {string} name       the `@name` in sql/queries (e.g. InsertChatMessages)
 * @property {string} file       the generated file it comes from
 * @property {string} sql        the text pgtyped sends ($1, $2, ... in place of the named parameters)
 * @property {string[]} params   parameter names in $n order
 * @property {string} key        normalized text (see normalizeSql)
 */

/**
 * A query text reduced to what survives pg_stat_statements' normalization, so the application's SQL and the
 * server's record of it compare equal: comments dropped, parameters and constants (strings, numbers, booleans)
 * replaced by `?`, whitespace collapsed, lower case.
 * @param {string} sql
 * @returns {string}
 */
export function normalizeSql(sql) {
  return sql
    .replace(/\/\*[\s\S]*?\*\//g, ' ')
    .replace(/--[^\n]*/g, ' ')
    // String constants, escape strings (E'\n') too.
    .replace(/(?:\b[eE])?'(?:[^'\\]|''|\\.)*'/g, '?')
    .replace(/\$\d+/g, '?')
    .replace(/\b\d+(?:\.\d+)?\b/g, '?')
    // pg_stat_statements shows constants as $n, a NULL among them ("IS NULL" stays: both sides get the same key).
    .replace(/\b(?:true|false|null)\b/gi, '?')
    .replace(/\s+/g, ' ')
    .replace(/\s*([(),;=<>+*/|-])\s*/g, '$1')
    .trim()
    .toLowerCase();
}

/** @param {unknown} v @returns {v is Record<string, unknown>} */
const isRecord = (v) => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * Reads the generated query modules. Each holds `const <name>IR: any = {...};` JSON literals (pgtyped's IR).
 * @param {string} root  the project folder
 * @returns {GeneratedStatement[]}
 */
export function loadGeneratedStatements(root) {
  /** @type {Map<string, string>} lower-case name -> name as written in sql/queries */
  const names = new Map();
  const queriesDir = path.join(root, 'sql', 'queries');
  for (const f of readdirSync(queriesDir).filter((n) => n.endsWith('.sql'))) {
    for (const m of readFileSync(path.join(queriesDir, f), 'utf8').matchAll(/@name\s+(\w+)/g)) {
      const n = m[1] ?? '';
      names.set(n.toLowerCase(), n);
    }
  }
  const genDir = path.join(root, 'sql', 'generated');
  /** @type {GeneratedStatement[]} */
  const out = [];
  for (const f of readdirSync(genDir).filter((n) => n.endsWith('.queries.ts')).sort()) {
    const text = readFileSync(path.join(genDir, f), 'utf8');
    for (const m of text.matchAll(/^const (\w+)IR: any = (\{.*\});$/gm)) {
      const id = m[1] ?? '';
      /** @type {unknown} */
      const ir = JSON.parse(m[2] ?? '{}');
      if (!isRecord(ir) || typeof ir.statement !== 'string' || !Array.isArray(ir.params)) {
        throw new Error(`${f}: ${id}IR is not a pgtyped IR`);
      }
      // Without values, pgtyped reports which $n each named parameter got (all of ours are scalars).
      const { query, mapping } = processSQLQueryIR(/** @type {Parameters<typeof processSQLQueryIR>[0]} */ (/** @type {unknown} */ (ir)));
      /** @type {string[]} */
      const params = [];
      for (const p of mapping) {
        if (!('assignedIndex' in p) || typeof p.assignedIndex !== 'number') throw new Error(`${f}: ${id} has a non-scalar parameter ${p.name}`);
        params[p.assignedIndex - 1] = p.name;
      }
      const name = names.get(id.toLowerCase()) ?? id.charAt(0).toUpperCase() + id.slice(1);
      out.push({ name, file: f, sql: query, params, key: normalizeSql(query) });
    }
  }
  return out;
}

/** Whitespace runs as one space, ends trimmed: how a cut pg_stat_activity text is compared with a statement's. */
const collapse = (/** @type {string} */ sql) => sql.replace(/\s+/g, ' ').trim();

/**
 * @typedef {object} StatementNames
 * @property {Map<string, string>} byKey  normalized text -> name (names joined by '/' when texts share a key)
 * @property {{ text: string, name: string }[]} texts  each statement's text as pgtyped sends it, whitespace collapsed
 */

/**
 * What nameOf needs to name the generated statements.
 * @param {GeneratedStatement[]} generated
 * @returns {StatementNames}
 */
export function statementNames(generated) {
  /** @type {Map<string, string>} statements equal after normalization share one entry (and one queryid) */
  const byKey = new Map();
  for (const g of generated) {
    const other = byKey.get(g.key);
    byKey.set(g.key, other ? [other, g.name].sort().join('/') : g.name);
  }
  return { byKey, texts: generated.map((g) => ({ text: collapse(g.sql), name: g.name })) };
}

/**
 * pg_stat_activity keeps the first track_activity_query_size - 1 bytes of a text (1023 by default); a text this
 * long may have been cut.
 */
const CUT_AT_LEAST = 1000;

/**
 * Names a query text from pg_stat_statements or pg_stat_activity: a generated statement's name, a transaction
 * keyword, or a short excerpt.
 *
 * pg_stat_statements keeps whole texts, with constants as $n: they are matched on their normalized text. A text
 * from pg_stat_activity may be cut (see CUT_AT_LEAST), and normalizing drops comments: a statement that starts with a
 * long comment (InsertChatMessages: 1 kB of it) leaves nothing to match. A cut text is the start of the text the
 * client sent, so it is matched as that, comments included.
 * @param {StatementNames} names
 * @param {string} query
 * @returns {{ name: string, known: boolean }}
 */
export function nameOf(names, query) {
  const key = normalizeSql(query);
  const hit = names.byKey.get(key);
  if (hit) return { name: hit, known: true };
  if (Buffer.byteLength(query) >= CUT_AT_LEAST) {
    const start = collapse(query);
    const found = [...new Set(names.texts.filter((t) => t.text.startsWith(start)).map((t) => t.name))].sort();
    if (found.length) return { name: found.join('/'), known: true };
  }
  const word = /^(begin|commit|rollback|start transaction)\b/.exec(key);
  if (word) return { name: (word[1] ?? '').toUpperCase(), known: true };
  // Postgres' own referential-integrity check (ri_triggers.c), run for each row that references another table.
  const fk = /^select \? from only "[^"]+"\."([^"]+)" x where .* for key share of x$/.exec(key);
  if (fk) return { name: `foreign-key check on ${fk[1] ?? '?'}`, known: true };
  return { name: `(other) ${query.replace(/\s+/g, ' ').trim().slice(0, 60)}`, known: false };
}

/**
 * @typedef {{ query: (text: string, values?: unknown[]) => Promise<{ rows: Record<string, unknown>[] }> }} PgLike
 */

/**
 * @typedef {object} StatementStat
 * @property {string} query
 * @property {boolean} toplevel  sent by a client (false: run inside another statement, e.g. a foreign-key check)
 * @property {number} calls
 * @property {number} totalMs    execution time (nested statements' time is also inside their parent's)
 * @property {number} rows
 */

/**
 * @typedef {object} TableStat
 * @property {number} ins
 * @property {number} upd
 * @property {number} hotUpd
 * @property {number} del
 */

/**
 * @typedef {object} PgSnapshot
 * @property {StatementStat[]} statements  the application's statements (ours filtered out)
 * @property {Record<string, TableStat>} tables  chats, chat_messages
 * @property {number | null} sessions     pg_stat_database.sessions of this database (PG 14+), or null
 * @property {number} backends             connections open to this database now
 */

/** @param {unknown} v */
const num = (v) => (v === null || v === undefined ? 0 : Number(v));

/**
 * @param {PgLike} db
 * @param {{ statements?: boolean }} [opts]
 * @returns {Promise<PgSnapshot>}
 */
export async function pgSnapshot(db, { statements = true } = {}) {
  // Each read in its own statement: a snapshot is taken per transaction, and we want fresh figures.
  await db.query(`${TAG} SELECT pg_stat_clear_snapshot()`);
  /** @type {StatementStat[]} */
  let stmts = [];
  if (statements) {
    // `toplevel` (PG 14+) tells round trips from statements run inside others (foreign-key checks, with track=all).
    const sql = (/** @type {string} */ top) =>
      `${TAG} SELECT query, ${top} AS toplevel, calls, total_exec_time, rows FROM pg_stat_statements
       WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) AND query NOT LIKE $1`;
    const r = await db.query(sql('toplevel'), [`${TAG}%`]).catch(() => db.query(sql('true'), [`${TAG}%`]));
    stmts = r.rows.map((row) => ({
      query: String(row.query),
      toplevel: row.toplevel !== false,
      calls: num(row.calls),
      totalMs: num(row.total_exec_time),
      rows: num(row.rows),
    }));
  }
  const t = await db.query(
    `${TAG} SELECT relname, n_tup_ins, n_tup_upd, n_tup_hot_upd, n_tup_del FROM pg_stat_user_tables
     WHERE schemaname = current_schema() AND relname IN ('chats', 'chat_messages')`,
  );
  /** @type {Record<string, TableStat>} */
  const tables = { chats: { ins: 0, upd: 0, hotUpd: 0, del: 0 }, chat_messages: { ins: 0, upd: 0, hotUpd: 0, del: 0 } };
  for (const row of t.rows) {
    tables[String(row.relname)] = { ins: num(row.n_tup_ins), upd: num(row.n_tup_upd), hotUpd: num(row.n_tup_hot_upd), del: num(row.n_tup_del) };
  }
  let sessions = null;
  try {
    const s = await db.query(`${TAG} SELECT sessions FROM pg_stat_database WHERE datname = current_database()`);
    sessions = s.rows[0] ? num(s.rows[0].sessions) : null;
  } catch {
    sessions = null; // before PG 14
  }
  const b = await db.query(`${TAG} SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()`);
  return { statements: stmts, tables, sessions, backends: num(b.rows[0]?.n) };
}

/**
 * Table counters minus a baseline.
 * @param {Record<string, TableStat>} end
 * @param {Record<string, TableStat>} start
 * @returns {Record<string, TableStat>}
 */
export function tableDelta(end, start) {
  /** @type {Record<string, TableStat>} */
  const out = {};
  for (const [name, e] of Object.entries(end)) {
    const s = start[name] ?? { ins: 0, upd: 0, hotUpd: 0, del: 0 };
    out[name] = { ins: e.ins - s.ins, upd: e.upd - s.upd, hotUpd: e.hotUpd - s.hotUpd, del: e.del - s.del };
  }
  return out;
}

/**
 * @typedef {object} NamedStat
 * @property {string} name
 * @property {boolean} known      a generated statement (or BEGIN/COMMIT/ROLLBACK, or a foreign-key check)
 * @property {boolean} toplevel   sent by a client, not run inside another statement
 * @property {number} calls
 * @property {number} totalMs
 * @property {number} rows
 * @property {boolean} updatesChats  the statement updates the chats table, as its main statement or in a CTE
 *   (UpdateChatStatus after its turn-record CTEs, SetModelTitle's titled), other than InsertChatMessages (counted apart)
 */

/**
 * Groups pg_stat_statements rows by statement name (several entries can share one, e.g. after a re-plan).
 * @param {StatementStat[]} stmts
 * @param {GeneratedStatement[]} generated
 * @returns {NamedStat[]} sorted by calls, most first
 */
export function groupByName(stmts, generated) {
  const names = statementNames(generated);
  /** @type {Map<string, NamedStat>} */
  const groups = new Map();
  for (const s of stmts) {
    const { name: base, known } = nameOf(names, s.query);
    const name = s.toplevel ? base : `${base} (nested)`;
    const g = groups.get(name) ?? { name, known, toplevel: s.toplevel, calls: 0, totalMs: 0, rows: 0, updatesChats: base !== 'InsertChatMessages' && /\bupdate chats\b/.test(normalizeSql(s.query)) };
    g.calls += s.calls;
    g.totalMs += s.totalMs;
    g.rows += s.rows;
    groups.set(name, g);
  }
  return [...groups.values()].sort((a, b) => b.calls - a.calls || a.name.localeCompare(b.name));
}
