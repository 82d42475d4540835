/**
 * The bad-input tables' runner: each case is one request that must get a 4xx with the standard JSON error body,
 * leak nothing internal, and write nothing (a fingerprint of the rows it could touch is the same before and after).
 */
import { expect } from 'vitest';
import type { Db } from '../../functions/core/db';
import { call, ErrorBody, type CallOptions } from './helpers';

export interface BadCase<Ids> {
  name: string;
  method: string;
  path: string | ((ids: Ids) => string);
  /** Whose token goes with the request (or none). */
  as: 'owner' | 'member' | 'agent' | 'none';
  /** The JSON body, or a function of the ids that makes it. */
  body?: unknown;
  raw?: string;
  headers?: Record<string, string>;
  status: number;
}

/** Something in the text that would be internal: SQL, a stack, a connection string, Postgres' own words. */
const INTERNAL = /\bat \S+ \(|postgres(ql)?:\/\/|SELECT |INSERT |UPDATE |syntax error|relation "|column "|violates|ZodError|TypeError/;

/**
 * Fingerprints tables (md5 of their rows in a fixed order, optionally filtered) in one round trip. Filters are SQL
 * on the table alias `t` with $1 as the given parameter.
 */
export async function fingerprint(db: Db, tables: Record<string, string | null>, param?: string): Promise<Record<string, string>> {
  const cols = Object.entries(tables).map(
    ([table, where]) => `(SELECT md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) FROM ${table} t${where ? ` WHERE ${where}` : ''}) AS "${table}"`,
  );
  const r = await db.query(`SELECT ${cols.join(', ')}`, param === undefined ? [] : [param]);
  const row = r.rows[0];
  if (typeof row !== 'object' || row === null) throw new Error('no fingerprint row');
  return Object.fromEntries(Object.entries(row).map(([k, v]) => [k, String(v)]));
}

/** Every table of the public schema, unfiltered. */
export async function allTables(db: Db): Promise<Record<string, null>> {
  const r = await db.query("SELECT table_name AS t FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE' ORDER BY 1", []);
  return Object.fromEntries(r.rows.map((x) => [String((x as { t: unknown }).t), null]));
}

/** Runs one case and checks status, body, leaks. */
export async function expectRefused<Ids>(c: BadCase<Ids>, ids: Ids, tokens: Record<'owner' | 'member' | 'agent', string>, env?: Env): Promise<void> {
  const path = typeof c.path === 'function' ? c.path(ids) : c.path;
  const opts: CallOptions = { ...(env ? { env } : {}), ...(c.headers ? { headers: c.headers } : {}) };
  if (c.as !== 'none') opts.token = tokens[c.as];
  if (c.raw !== undefined) {
    opts.rawBody = c.raw;
    opts.headers = { 'content-type': 'application/json', ...c.headers };
  } else if (c.body !== undefined) {
    opts.body = typeof c.body === 'function' ? (c.body as (i: Ids) => unknown)(ids) : c.body;
  }
  const r = await call(c.method, path, opts);
  expect(r.status, `${c.name}: ${r.text.slice(0, 300)}`).toBe(c.status);
  expect(r.headers.get('content-type')).toMatch(/^application\/json/);
  const body = ErrorBody.parse(r.body);
  expect(body.message.length).toBeGreaterThan(0);
  expect(r.text, c.name).not.toMatch(INTERNAL);
}
