/**
 * Debug runs: off keeps none, `errors` only failed calls, `all` every call; a secret planted wherever it could leak
 * appears in no run; runs are bounded; owners only.
 */
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { boundedRun, MAX_RUN_BYTES, MAX_STRING, redact } from '../../durable-objects/room/debug-run';
import { call, makeOwner, makeUser, roomOf, sdk } from './helpers';
import { ownConfig, setDebugRuns } from './operations-fixtures';

const Runs = z.object({
  runs: z.array(
    z.object({
      id: z.string(),
      started_at: z.string(),
      model_config_id: z.string().nullable(),
      request: z.record(z.string(), z.unknown()),
      response: z.record(z.string(), z.unknown()),
      attempts: z.array(z.object({ at: z.string(), status: z.string(), error: z.string().optional() })),
      timings: z.record(z.string(), z.number().nullable()),
    }),
  ),
});

async function runsOf(token: string, chatId: string) {
  const r = await call('GET', `/api/v2/chats/${chatId}/debug-runs`, { token });
  expect(r.status, r.text).toBe(200);
  return Runs.parse(r.body).runs;
}

async function turn(token: string, content: string, cfg: string) {
  const chat = await sdk(token).createChat({ content, model_config_id: cfg });
  await roomOf(chat.id).idle();
  return chat.id;
}

describe('debug runs', () => {
  it('keeps none when off, only failed calls with errors, every call with all', async () => {
    const owner = await makeOwner();
    const cfg = await ownConfig(`dbg-${crypto.randomUUID().slice(0, 8)}`);
    await setDebugRuns(owner.token, call, 'off');
    const off = await turn(owner.token, 'quiet', cfg);
    const offBad = await turn(owner.token, 'quiet [[mock error_status=400]]', cfg);
    expect(await runsOf(owner.token, off)).toEqual([]);
    expect(await runsOf(owner.token, offBad)).toEqual([]);

    await setDebugRuns(owner.token, call, 'errors');
    const fine = await turn(owner.token, 'fine', cfg);
    const failed = await turn(owner.token, 'broken [[mock error_status=400]]', cfg);
    expect(await runsOf(owner.token, fine)).toEqual([]);
    const [run] = await runsOf(owner.token, failed);
    expect(run).toMatchObject({
      model_config_id: cfg,
      response: { error: { kind: 'invalid_request', message: 'The model provider rejected the request (HTTP 400).' } },
      attempts: [{ status: 'error', error: 'The model provider rejected the request (HTTP 400).' }],
    });

    await setDebugRuns(owner.token, call, 'all');
    const all = await turn(owner.token, 'every word', cfg);
    const runs = await runsOf(owner.token, all);
    expect(runs).toHaveLength(1);
    expect(runs[0]?.response).toMatchObject({ parts: { text: 'Echo: every word' }, finish_reason: 'stop' });
    expect(runs[0]?.attempts).toEqual([{ at: (expect.any(String) as string), status: 'ok' }]);
    expect(JSON.stringify(runs[0]?.request)).toContain('every word');
    expect(runs[0]?.timings).toMatchObject({ queue_ms: (expect.any(Number) as number), first_token_ms: (expect.any(Number) as number), total_ms: (expect.any(Number) as number) });
    await setDebugRuns(owner.token, call, 'off');
  });

  it('never keeps a credential: bearer tokens and credential fields in what was sent are redacted', async () => {
    const owner = await makeOwner();
    const secret = `planted${crypto.randomUUID().replaceAll('-', '')}`;
    const cfg = await ownConfig(`redact-${crypto.randomUUID().slice(0, 8)}`);
    await setDebugRuns(owner.token, call, 'all');
    const chat = await turn(owner.token, `use Authorization: Bearer ${secret} and {"api_key": "${secret}"} and Basic ${secret}`, cfg);
    const failed = await turn(owner.token, `again Bearer ${secret} [[mock error_status=400]]`, cfg);
    await setDebugRuns(owner.token, call, 'off');
    const runs = [...(await runsOf(owner.token, chat)), ...(await runsOf(owner.token, failed))];
    expect(runs).toHaveLength(2);
    const text = JSON.stringify(runs);
    expect(text).not.toContain(secret);
    expect(text).toContain('Bearer [redacted]');
  });

  it('redacts the provider key and MCP header values wherever they appear, credential keys, and file bytes', () => {
    const key = 'sk-provider-0123456789';
    const header = 'mcp-header-secret-42';
    const run = redact(
      {
        request: {
          prompt: [{ role: 'user', content: [{ type: 'text', text: `${key} / ${header}` }, { type: 'file', mediaType: 'image/png', data: 'AAAA'.repeat(100) }] }],
          headers: { Authorization: `Bearer ${key}`, 'x-api-key': key, Cookie: 'a=b' },
          url: new URL(`https://h.example/?k=${key}`),
        },
        response: { error: { message: `echoed ${header}` } },
      },
      [key, header],
    );
    const text = JSON.stringify(run);
    expect(text).not.toContain(key);
    expect(text).not.toContain(header);
    expect(run).toEqual({
      request: {
        prompt: [{ role: 'user', content: [{ type: 'text', text: '[redacted] / [redacted]' }, { type: 'file', mediaType: 'image/png', data: { bytes: 300, media_type: 'image/png' } }] }],
        headers: { Authorization: '[redacted]', 'x-api-key': '[redacted]', Cookie: '[redacted]' },
        url: 'https://h.example/?k=[redacted]',
      },
      response: { error: { message: 'echoed [redacted]' } },
    });
  });

  it('bounds a run: long strings are cut, the oldest prompt messages go first', () => {
    const long = 'x'.repeat(MAX_STRING + 10);
    expect(redact(long, [])).toBe(`${'x'.repeat(MAX_STRING)}…[cut 10 characters]`);
    const prompt = Array.from({ length: 100 }, (_, i) => ({ role: 'user', content: `${i} ${'y'.repeat(7000)}` }));
    const bounded = z.object({ request: z.object({ prompt: z.array(z.object({ content: z.string() })), dropped_messages: z.number() }) }).parse(boundedRun({ request: { prompt }, response: {} }));
    expect(JSON.stringify(bounded).length).toBeLessThanOrEqual(MAX_RUN_BYTES);
    expect(bounded.request.prompt[0]?.content.startsWith('0 ')).toBe(true);
    expect(bounded.request.prompt.at(-1)?.content.startsWith('99 ')).toBe(true);
    expect(bounded.request.dropped_messages).toBe(100 - bounded.request.prompt.length);
  });

  it('answers 404 for a chat that does not exist and 403 to a member', async () => {
    const owner = await makeOwner();
    const u = await makeUser();
    expect((await call('GET', `/api/v2/chats/${crypto.randomUUID()}/debug-runs`, { token: owner.token })).status).toBe(404);
    expect((await call('GET', `/api/v2/chats/${crypto.randomUUID()}/debug-runs`, { token: u.token })).status).toBe(403);
    expect((await call('GET', '/api/v2/chats/config/debug-runs', { token: u.token })).status).toBe(403);
    const bad = await call('PUT', '/api/v2/chats/config/debug-runs', { token: owner.token, body: { debug_runs: 'some', retention_days: 7 } });
    expect(bad.status).toBe(400);
  });
});
