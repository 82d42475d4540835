/**
 * Money, exactly: prices and amounts are decimal strings, held as integers of micro-units (0.000001 of the
 * deployment's currency) in BigInt, and a model answer's cost is computed from its usage in integers. No floating
 * point anywhere on the way.
 */
import type { Pricing } from './shapes/usage';
import type { TokenUsage } from './shapes/chat';

/** Micro-units in one unit of the currency. */
const MICROS = 1_000_000n;
const MAX_BIGINT = 9_223_372_036_854_775_807n;

export { Amount, Price, Pricing } from './shapes/usage';

/** A decimal string (as validated above) in micro-units: "3.5" → 3500000n. */
export function toMicros(s: string): bigint {
  const m = /^(\d+)(?:\.(\d{1,6}))?$/.exec(s);
  if (!m) throw new Error(`not a decimal amount: ${JSON.stringify(s)}`);
  return BigInt(m[1] ?? '0') * MICROS + BigInt((m[2] ?? '').padEnd(6, '0'));
}

/** Micro-units as a decimal string with six decimals: 1500n → "0.001500". */
export function formatMicros(micros: bigint): string {
  const sign = micros < 0n ? '-' : '';
  const abs = micros < 0n ? -micros : micros;
  return `${sign}${(abs / MICROS).toString()}.${(abs % MICROS).toString().padStart(6, '0')}`;
}

/** An amount as the API answers it: six decimals ("4" → "4.000000"). */
export const normalizeAmount = (s: string | null): string | null => (s === null ? null : formatMicros(toMicros(s)));

/** A token count as a BigInt: non-negative whole tokens, whatever the provider sent. */
function tokens(n: number): bigint {
  return Number.isFinite(n) && n > 0 ? BigInt(Math.trunc(n)) : 0n;
}

/**
 * The cost of one answer in micro-units. Input tokens (which include cache reads and writes, as every provider in
 * the AI SDK reports them) are split into plain input, cache reads and cache writes; output tokens (which include
 * reasoning) into plain output and reasoning. Each part is multiplied by its price per million tokens; the sum, in
 * units of 10^-12, is rounded half up to a whole micro-unit once.
 */
export function costMicros(p: Pricing, u: TokenUsage): bigint {
  const input = tokens(u.input_tokens);
  const cacheRead = tokens(u.cache_read_tokens);
  const cacheWrite = tokens(u.cache_creation_tokens);
  const plainInput = input > cacheRead + cacheWrite ? input - cacheRead - cacheWrite : 0n;
  const output = tokens(u.output_tokens);
  // Reasoning has its own price only when one is set; otherwise it is output like the rest.
  const reasoned = tokens(u.reasoning_tokens);
  const reasoning = p.reasoning_per_mtok === undefined ? 0n : reasoned < output ? reasoned : output;
  const inputPrice = toMicros(p.input_per_mtok);
  const outputPrice = toMicros(p.output_per_mtok);
  const scaled =
    plainInput * inputPrice +
    cacheRead * (p.cache_read_per_mtok === undefined ? inputPrice : toMicros(p.cache_read_per_mtok)) +
    cacheWrite * (p.cache_write_per_mtok === undefined ? inputPrice : toMicros(p.cache_write_per_mtok)) +
    (output - reasoning) * outputPrice +
    reasoning * (p.reasoning_per_mtok === undefined ? outputPrice : toMicros(p.reasoning_per_mtok));
  return (scaled + MICROS / 2n) / MICROS;
}

/**
 * What an answer costs, as stored: micro-units as a decimal integer string, or null when it is not priced (the
 * model has no pricing, or the provider reported no usage: it counts as zero and is flagged as unpriced).
 */
export function answerCost(pricing: Pricing | null, usage: TokenUsage | null, usageKnown: boolean): string | null {
  if (pricing === null || usage === null || !usageKnown) return null;
  const micros = costMicros(pricing, usage);
  // The column is a bigint; no real answer comes near 9.2 trillion units of a currency.
  return (micros > MAX_BIGINT ? MAX_BIGINT : micros).toString();
}
