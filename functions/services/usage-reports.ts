/**
 * Usage reports, read from the ledger (usage_daily per user, UTC day and model; usage_by_chat per chat and day)
 * over whole UTC days: one statement per report, grouped in SQL; the totals are the sum of the groups. Amounts are summed exactly (text
 * from Postgres, BigInt here) and shown as decimal strings. CSV for exports.
 */
import { z } from 'zod';
import type { Queryable } from '../core/db';
import { getUsageByChat, getUsageByDay, getUsageByModel, getUsageByUser } from '../../sql/generated/usage.queries';
import { UsageGroupKey, type GroupBy, type UsageReport, type UsageTotals } from '../core/shapes/usage';
import { formatMicros } from '../core/usage-cost';

export { GroupBy } from '../core/shapes/usage';

const Count = z.string().regex(/^\d+$/);
/** The sums every statement returns, as text. */
const SumsRow = z.object({
  turns: Count,
  unpriced_turns: Count,
  input_tokens: Count,
  output_tokens: Count,
  reasoning_tokens: Count,
  cache_read_tokens: Count,
  cache_creation_tokens: Count,
  cost_micros: Count,
});
type SumsRow = z.infer<typeof SumsRow>;
const SUM_FIELDS = [
  'turns',
  'unpriced_turns',
  'input_tokens',
  'output_tokens',
  'reasoning_tokens',
  'cache_read_tokens',
  'cache_creation_tokens',
  'cost_micros',
] as const satisfies readonly (keyof SumsRow)[];
const TOKEN_FIELDS = ['input_tokens', 'output_tokens', 'reasoning_tokens', 'cache_read_tokens', 'cache_creation_tokens'] as const;

type Sums = UsageTotals;
/** A group's key: its day, model, chat or user (with what names it). */
type GroupKey = z.infer<(typeof UsageGroupKey)[GroupBy]>;

export interface ReportQuery {
  /** One user's usage, or (null) everyone's. */
  userId: string | null;
  /** UTC days, both included, `YYYY-MM-DD`. */
  from: string;
  to: string;
  groupBy: GroupBy;
}

function sumsOf(r: SumsRow): Sums {
  const input = Number(r.input_tokens);
  const output = Number(r.output_tokens);
  return {
    input_tokens: input,
    output_tokens: output,
    reasoning_tokens: Number(r.reasoning_tokens),
    cache_read_tokens: Number(r.cache_read_tokens),
    cache_creation_tokens: Number(r.cache_creation_tokens),
    total_tokens: input + output,
    cost: formatMicros(BigInt(r.cost_micros)),
    turns: Number(r.turns),
    unpriced_turns: Number(r.unpriced_turns),
  };
}

/** The sums of all groups (exact: BigInt). */
function totalOf(rows: readonly SumsRow[]): Sums {
  const total: SumsRow = { turns: '0', unpriced_turns: '0', input_tokens: '0', output_tokens: '0', reasoning_tokens: '0', cache_read_tokens: '0', cache_creation_tokens: '0', cost_micros: '0' };
  for (const r of rows) {
    for (const f of SUM_FIELDS) total[f] = (BigInt(total[f]) + BigInt(r[f])).toString();
  }
  return sumsOf(total);
}

// Each statement's rows: the group's key as the API shape has it, and the sums as text.
const DayRow = SumsRow.extend(UsageGroupKey.day.shape);
const ModelRow = SumsRow.extend(UsageGroupKey.model.shape);
const ChatRow = SumsRow.extend(UsageGroupKey.chat.shape);
const UserRow = SumsRow.extend(UsageGroupKey.user.shape);

/** The report's groups, keyed, with each group's sums as the statement returned them. */
async function groupsOf(db: Queryable, q: ReportQuery): Promise<{ key: GroupKey; sums: SumsRow }[]> {
  const params = { user_id: q.userId, from: q.from, to: q.to };
  switch (q.groupBy) {
    case 'day':
      return (await getUsageByDay.run(params, db)).map((row) => {
        const r = DayRow.parse(row);
        return { key: { day: r.day }, sums: r };
      });
    case 'model':
      return (await getUsageByModel.run(params, db)).map((row) => {
        const r = ModelRow.parse(row);
        return { key: { model_config_id: r.model_config_id, provider: r.provider, model: r.model, display_name: r.display_name }, sums: r };
      });
    case 'chat':
      return (await getUsageByChat.run(params, db)).map((row) => {
        const r = ChatRow.parse(row);
        return { key: { chat_id: r.chat_id, user_id: r.user_id, title: r.title }, sums: r };
      });
    case 'user':
      return (await getUsageByUser.run(params, db)).map((row) => {
        const r = UserRow.parse(row);
        return { key: { user_id: r.user_id, username: r.username, email: r.email }, sums: r };
      });
  }
}

export async function usageReport(db: Queryable, q: ReportQuery): Promise<UsageReport> {
  const groups = await groupsOf(db, q);
  return {
    from: q.from,
    to: q.to,
    group_by: q.groupBy,
    totals: totalOf(groups.map((g) => g.sums)),
    groups: groups.map((g) => ({ ...g.key, ...sumsOf(g.sums) })),
  };
}

const SUM_COLUMNS = [...TOKEN_FIELDS, 'total_tokens', 'cost', 'turns', 'unpriced_turns'] as const;
const KEY_COLUMNS = (g: GroupBy): readonly string[] => Object.keys(UsageGroupKey[g].shape);

/**
 * One CSV field (RFC 4180): quoted when it holds a comma, quote or line break. Text that a spreadsheet would run as a
 * formula (starting with =, +, -, @, tab or carriage return; chat titles are anyone's text) gets a leading quote.
 */
function csvField(v: unknown): string {
  if (v === null || v === undefined) return '';
  let s = typeof v === 'string' ? v : typeof v === 'number' ? String(v) : JSON.stringify(v);
  if (typeof v === 'string' && /^[=+\-@\t\r]/.test(s)) s = `'${s}`;
  return /[",\r\n]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s;
}

/** The report's groups as CSV: a header line, then one line per group (CRLF line ends). */
export function reportCsv(r: UsageReport): string {
  const columns = [...KEY_COLUMNS(r.group_by), ...SUM_COLUMNS];
  const lines = [columns.join(',')];
  for (const g of r.groups) {
    const record: Record<string, unknown> = { ...g };
    lines.push(columns.map((c) => csvField(record[c])).join(','));
  }
  return `${lines.join('\r\n')}\r\n`;
}
