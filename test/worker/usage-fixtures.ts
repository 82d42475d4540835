/** Fixtures for the usage and spend-limit suites: priced model configs on the mock, chats on them, the mock's log. */
import { runInDurableObject } from 'cloudflare:test';
import { env } from 'cloudflare:workers';
import { expect } from 'vitest';
import { z } from 'zod';
import type { UsageMeter } from '../../durable-objects/usage-meter';
import { meterName } from '../../functions/lib/usage-meter-api';
import type { Pricing } from '../../functions/services/usage-cost';
import { call, ChatSchema, ErrorBody, roomOf, testEnv, type TestUser } from './helpers';

/** A live model config on the tests' mock provider, priced (or not), made through the API by `owner`. */
export async function pricedModel(owner: TestUser, pricing: Pricing | null): Promise<string> {
  const r = await call('POST', '/api/v2/chats/model-configs', {
    token: owner.token,
    body: { provider: 'openai-compat', model: 'mock-echo', display_name: `priced ${crypto.randomUUID().slice(0, 8)}`, context_limit: 100_000, compression_threshold: 100, pricing },
  });
  expect(r.status, r.text).toBe(201);
  return z.object({ id: z.string() }).parse(r.body).id;
}

/** Starts a chat on `modelConfigId` and waits for its first turn. */
export async function chatOn(token: string, modelConfigId: string, content: string) {
  const r = await call('POST', '/api/v2/chats', { token, body: { content, model_config_id: modelConfigId } });
  expect(r.status, r.text).toBe(201);
  const chat = ChatSchema.parse(r.body);
  await roomOf(chat.id).idle();
  return chat;
}

/** How many model calls the mock received whose messages mention `marker`. */
export async function callsMentioning(marker: string): Promise<number> {
  const all = z.array(z.object({ body: z.unknown() }).loose()).parse(await (await fetch(`${testEnv.MOCK_LLM_URL}/__mock/requests`)).json());
  return all.filter((r) => JSON.stringify(r.body).includes(marker)).length;
}

/** Sets a user's own limit as `owner`. */
export async function setUserLimit(owner: TestUser, userId: string, limit: { period: 'day' | 'month'; amount: string | null }) {
  const r = await call('PUT', `/api/v2/users/${userId}/spend-limit`, { token: owner.token, body: limit });
  expect(r.status, r.text).toBe(200);
  return r.body;
}

export const SpendStateSchema = z
  .object({ period: z.enum(['day', 'month']), amount: z.string().nullable(), spent: z.string(), resets_at: z.iso.datetime(), override: z.boolean() })
  .strict();

export async function limitOf(token: string) {
  const r = await call('GET', '/api/v2/users/me/usage/limit', { token });
  expect(r.status, r.text).toBe(200);
  return SpendStateSchema.parse(r.body);
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
