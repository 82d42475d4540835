/**
 * The record of every model call: stored with the answer (chat_turns, no statement of its own) with figures that agree
 * with the gate's timing and with the message's tokens and cost, for answers and failures.
 */
import { describe, expect, it } from 'vitest';
import { makeUser, messagesOf, mockGate, roomOf, sdk } from './helpers';
import { ownConfig, recordsOf } from './operations-fixtures';

describe('turn records', () => {
  it("stores one record per model call: the gate's hold lies inside first token and total, tokens and cost are the message's", async () => {
    const u = await makeUser();
    const model = `rec-${crypto.randomUUID().slice(0, 8)}`;
    const cfg = await ownConfig(model);
    const gate = mockGate();
    // Held before its first token: the first token comes only after the gate opens, so first_token_ms <= total_ms.
    const chat = await sdk(u.token).createChat({ content: `held ${gate.directive(0)}`, model_config_id: cfg });
    await gate.waiting(1);
    // Queued behind the held turn: its call was wanted from when it was queued, so it waited through the held call.
    const queued = await sdk(u.token).sendMessage(chat.id, { content: 'second one' });
    expect('queued_message' in queued).toBe(true);
    await gate.open();
    await roomOf(chat.id).idle();
    const msgs = await messagesOf(chat.id, u.token);
    const answers = msgs.filter((m) => m.role === 'assistant');
    const records = await recordsOf(chat.id);
    expect(records).toHaveLength(2);
    const [first, second] = records;
    if (!first || !second) throw new Error('two records');
    for (const [r, m] of [
      [first, answers[0]],
      [second, answers[1]],
    ] as const) {
      expect(r).toMatchObject({ user_id: u.user.id, model_config_id: cfg, provider: 'openai-compat', model, outcome: 'answered', error_kind: null, tool_steps: 0 });
      expect(r.first_token_ms).not.toBeNull();
      expect(r.first_token_ms ?? Infinity).toBeLessThanOrEqual(r.total_ms);
      expect(r.queue_ms).toBeGreaterThanOrEqual(0);
      expect({ input: Number(r.input_tokens), output: Number(r.output_tokens) }).toEqual({ input: m?.usage?.input_tokens, output: m?.usage?.output_tokens });
      expect(r.cost_micros === null ? null : (Number(r.cost_micros) / 1e6).toFixed(6)).toBe(m?.usage?.cost ?? null);
    }
    // The second message was queued before the gate opened, so it waited at least from the first call's first token
    // (after the gate) to its end.
    expect(second.queue_ms).toBeGreaterThanOrEqual(first.total_ms - (first.first_token_ms ?? 0));
    expect(new Set(records.map((r) => r.turn_id)).size).toBe(2);
  });

  it('records a failed call with its error kind and no tokens, also when it wrote no message', async () => {
    const u = await makeUser();
    const cfg = await ownConfig(`fail-${crypto.randomUUID().slice(0, 8)}`);
    const chat = await sdk(u.token).createChat({ content: 'refused [[mock error_status=400]]', model_config_id: cfg });
    expect(await roomOf(chat.id).idle()).toBe('error');
    const records = await recordsOf(chat.id);
    expect(records).toEqual([
      expect.objectContaining({ outcome: 'error', error_kind: 'invalid_request', first_token_ms: null, input_tokens: '0', output_tokens: '0', cost_micros: null }),
    ]);
  });
});
