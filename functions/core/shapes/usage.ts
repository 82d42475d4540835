/**
 * Usage, cost and spend limits, each shape written once (see `chat.ts` for the rule): prices on model configs, spend
 * limits, a user's current spend, and the usage reports. Money is a decimal string everywhere; it is held in BigInt
 * micro-units by `functions/core/usage-cost.ts`.
 */
import { z } from '@hono/zod-openapi';

/** A decimal string with at most `int` digits before the point and 6 after ("3", "3.00", "0.075"). */
function decimal(int: number) {
  return z.string().regex(new RegExp(`^\\d{1,${int}}(\\.\\d{1,6})?$`), {
    message: `must be a decimal string such as "3.00": at most ${int} digits before the point and 6 after it`,
  });
}

/** A price per million tokens. */
export const Price = decimal(9);
/** A spend limit's amount. */
export const Amount = decimal(12);

export const Pricing = z
  .object({
    input_per_mtok: Price,
    output_per_mtok: Price,
    /** Cache reads; the input price when absent. */
    cache_read_per_mtok: Price.optional(),
    /** Cache writes; the input price when absent. */
    cache_write_per_mtok: Price.optional(),
    /** Reasoning tokens (part of the output); the output price when absent. */
    reasoning_per_mtok: Price.optional(),
  })
  .strict()
  .openapi('ChatModelPricing', {
    description:
      "Prices per million tokens, decimal strings in the deployment's currency (at most 6 decimals). Cache reads and " +
      'writes default to the input price, reasoning to the output price.',
  });
export type Pricing = z.infer<typeof Pricing>;

export const SpendPeriod = z.enum(['day', 'month']).openapi('SpendPeriod', { description: 'A UTC day or a UTC calendar month' });
export type SpendPeriod = z.infer<typeof SpendPeriod>;

/** A spend limit per user and period; `amount` null: no limit. */
export const SpendLimit = z
  .object({ period: SpendPeriod, amount: Amount.nullable() })
  .strict()
  .openapi('SpendLimit', {
    description: "Per user and period (UTC day or calendar month), a decimal string in the deployment's currency; null: no limit",
  });
export type SpendLimit = z.infer<typeof SpendLimit>;

/** A user's limit and what they spent in the current period. */
export const SpendState = z
  .object({
    period: SpendPeriod,
    amount: z.string().nullable().openapi({ description: 'The limit per period; null: none' }),
    spent: z.string().openapi({ description: 'Spent in the current period' }),
    resets_at: z.iso.datetime(),
    override: z.boolean().openapi({ description: "The user's own limit (else the deployment default)" }),
  })
  .openapi('SpendLimitState');
export type SpendState = z.infer<typeof SpendState>;

export const GroupBy = z.enum(['day', 'model', 'chat', 'user']).openapi('UsageGroupBy');
export type GroupBy = z.infer<typeof GroupBy>;

/** What every report sums, over its range and per group. */
export const UsageTotals = z
  .object({
    input_tokens: z.number().int(),
    output_tokens: z.number().int(),
    reasoning_tokens: z.number().int(),
    cache_read_tokens: z.number().int(),
    cache_creation_tokens: z.number().int(),
    total_tokens: z.number().int(),
    cost: z.string().openapi({ description: 'Decimal string (6 decimals) in the deployment currency' }),
    turns: z.number().int(),
    unpriced_turns: z.number().int().openapi({ description: 'Answers without a cost: unpriced model, or no usage reported' }),
  })
  .openapi('UsageTotals');
export type UsageTotals = z.infer<typeof UsageTotals>;

/** The key of one group of a report, by what it is grouped by. */
export const UsageGroupKey = {
  day: z.object({ day: z.iso.date() }),
  model: z.object({ model_config_id: z.uuid(), provider: z.string().nullable(), model: z.string().nullable(), display_name: z.string().nullable() }),
  chat: z.object({ chat_id: z.uuid(), user_id: z.uuid(), title: z.string().nullable() }),
  user: z.object({ user_id: z.uuid(), username: z.string().nullable(), email: z.string().nullable() }),
} as const;

export const UsageGroup = z
  .union([
    UsageGroupKey.day.extend(UsageTotals.shape),
    UsageGroupKey.model.extend(UsageTotals.shape),
    UsageGroupKey.chat.extend(UsageTotals.shape),
    UsageGroupKey.user.extend(UsageTotals.shape),
  ])
  .openapi('UsageGroup', {
    description:
      'The sums of one group and its key: `day`; or `model_config_id, provider, model, display_name`; or `chat_id, user_id, ' +
      'title` (null once the chat is deleted); or `user_id, username, email`',
  });
export type UsageGroup = z.infer<typeof UsageGroup>;

export const UsageReport = z
  .object({ from: z.iso.date(), to: z.iso.date(), group_by: GroupBy, totals: UsageTotals, groups: z.array(UsageGroup) })
  .openapi('UsageReport');
export type UsageReport = z.infer<typeof UsageReport>;
