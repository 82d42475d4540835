/** Fixtures for the usage and spend-limit suites: priced model configs on the mock, chats on them, the mock's log. */
import { runInDurableObject } from 'cloudflare:test';
import { env } from 'cloudflare:workers';
import { expect } from 'vitest';
import { z } from 'zod';
import type { UsageMeter } from '../../durable-objects/usage-meter';
import { meterName } from '../../functions/core/usage-meter-api';
import type { Chat } from '../../functions/core/shapes/chat';
import { SpendState, type Pricing, type SpendLimit } from '../../functions/core/shapes/usage';
import { ErrorBody, roomOf, sdk, testEnv, type TestUser } from './helpers';

/** A live model config on the tests' mock provider, priced (or not), made through the SDK by `owner`. */
export async function pricedModel(owner: TestUser, pricing: Pricing | null): Promise<string> {
  const display_name = `priced ${crypto.randomUUID().slice(0, 8)}`;
  const cfg = await sdk(owner.token).createModelConfig({ provider: 'openai-compat', model: 'mock-echo', display_name, context_limit: 100_000, compression_threshold: 100, pricing });
  return cfg.id;
}

/** Starts a chat on `modelConfigId` and waits for its first turn. */
export async function chatOn(token: string, modelConfigId: string, content: string): Promise<Chat> {
  const chat = await sdk(token).createChat({ content, model_config_id: modelConfigId });
  expect(await roomOf(chat.id).idle()).toBe('waiting');
  return chat;
}

/** How many model calls the mock received whose messages mention `marker`. */
export async function callsMentioning(marker: string): Promise<number> {
  const all = z.array(z.object({ body: z.unknown() }).loose()).parse(await (await fetch(`${testEnv.MOCK_LLM_URL}/__mock/requests`)).json());
  return all.filter((r) => JSON.stringify(r.body).includes(marker)).length;
}

/** The API's shape, strict: an answer with any other field fails the test. */
export const SpendStateSchema = SpendState.strict();

/** Sets a user's own limit as `owner`. */
export async function setUserLimit(owner: TestUser, userId: string, limit: SpendLimit) {
  return SpendStateSchema.parse(await sdk(owner.token).setUserSpendLimit(userId, limit));
}

export async function limitOf(token: string) {
  return SpendStateSchema.parse(await sdk(token).mySpendLimit());
}

/** A 402 as the contract has it: the message, and the reset time in `detail`. */
export function expectSpendLimit(r: { status: number; body: unknown; text: string }): string {
  expect(r.status, r.text).toBe(402);
  const body = ErrorBody.parse(r.body);
  expect(body.message).toBe('Spend limit reached for this period.');
  return z.iso.datetime().parse(body.detail);
}

/** Moves a user's meter clock by `ms` (a period rolls over without waiting for it). */
export async function shiftMeterClock(userId: string, ms: number): Promise<void> {
  await runInDurableObject(env.USAGE_METER.getByName(meterName(userId)), (meter: UsageMeter) => {
    meter.now = () => Date.now() + ms;
  });
}

/** The next UTC midnight after `ms`, as the API writes it. */
export const nextUtcMidnight = (ms: number): string => {
  const d = new Date(ms);
  return new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate() + 1)).toISOString();
};
