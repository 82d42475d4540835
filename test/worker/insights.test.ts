/** Insights: every grouping, errors counted by kind, percentiles, and only owners read them. */
import { describe, expect, it } from 'vitest';
import { call, makeOwner, makeUser, roomOf, sdk } from './helpers';
import { ownConfig } from './operations-fixtures';

const insights = async (token: string, query: string) => await call('GET', `/api/v2/insights?${query}`, { token });

describe('insights', () => {
  it('groups by model, provider, day and user, counting errors by kind', async () => {
    const owner = await makeOwner();
    const u = await makeUser();
    const model = `ins-${crypto.randomUUID().slice(0, 8)}`;
    const cfg = await ownConfig(model);
    const ok = await sdk(u.token).createChat({ content: 'one two', model_config_id: cfg });
    await roomOf(ok.id).idle();
    const bad = await sdk(u.token).createChat({ content: 'no [[mock error_status=400]]', model_config_id: cfg });
    expect(await roomOf(bad.id).idle()).toBe('error');
    const denied = await sdk(u.token).createChat({ content: 'key [[mock error_status=401]]', model_config_id: cfg });
    expect(await roomOf(denied.id).idle()).toBe('error');

    const byModel = await insights(owner.token, 'group_by=model');
    expect(byModel.status, byModel.text).toBe(200);
    const rows = (byModel.body as { rows: { key: string }[] }).rows;
    const mine = rows.find((r) => r.key === model);
    expect(mine).toEqual({
      key: model,
      turns: 3,
      errors: { invalid_request: 1, auth: 1 },
      first_token_ms: { p50: (expect.any(Number) as number), p95: (expect.any(Number) as number) },
      total_ms: { p50: (expect.any(Number) as number), p95: (expect.any(Number) as number) },
      // "Echo: one two": 2 words in, 3 out, at 1000 and 2000 per million tokens: 0.008.
      input_tokens: 2,
      output_tokens: 3,
      cost: '0.008000',
    });

    const byUser = await insights(owner.token, 'group_by=user');
    expect((byUser.body as { rows: { key: string }[] }).rows.find((r) => r.key === u.user.id)).toMatchObject({ turns: 3, errors: { invalid_request: 1, auth: 1 } });
    const byProvider = await insights(owner.token, 'group_by=provider');
    const provider = (byProvider.body as { rows: { key: string; turns: number }[] }).rows.find((r) => r.key === 'openai-compat');
    expect(provider?.turns ?? 0).toBeGreaterThanOrEqual(3);
    const today = new Date().toISOString().slice(0, 10);
    const byDay = await insights(owner.token, `group_by=day&from=${today}&to=${today}`);
    expect(byDay.status, byDay.text).toBe(200);
    const day = (byDay.body as { rows: { key: string; turns: number }[] }).rows;
    expect(day.map((r) => r.key)).toEqual([today]);
    expect(day[0]?.turns ?? 0).toBeGreaterThanOrEqual(3);
    // A window before any of it: no rows.
    const empty = await insights(owner.token, 'group_by=model&from=2000-01-01&to=2000-01-31');
    expect(empty.body).toMatchObject({ rows: [] });
  });

  it('refuses members (403) and bad windows (400)', async () => {
    const owner = await makeOwner();
    const u = await makeUser();
    expect((await insights(u.token, 'group_by=day')).status).toBe(403);
    const bad = await insights(owner.token, 'group_by=week');
    expect(bad.status).toBe(400);
    const backwards = await insights(owner.token, 'from=2026-02-01&to=2026-01-01');
    expect(backwards.status).toBe(400);
    const long = await insights(owner.token, 'from=2020-01-01&to=2026-01-01');
    expect(long.status).toBe(400);
  });
});
