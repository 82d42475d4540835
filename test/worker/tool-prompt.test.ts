/**
 * Tool calls and results in what the model is sent (the prompt, the context estimate, the compaction request) and
 * how results are capped: pure functions, no database.
 */
import { describe, expect, it } from 'vitest';
import { buildPrompt, contextTokens, summaryRequest } from '../../durable-objects/llm/compaction';
import { toPrompt } from '../../durable-objects/llm/prompt';
import { capResult, resultText } from '../../durable-objects/llm/tools';
import type { Message } from '../../functions/core/chats';

let nextId = 1;
const msg = (role: Message['role'], content: Message['content']): Message => ({
  id: nextId++,
  chat_id: 'c',
  role,
  content,
  model_config_id: null,
  created_at: '2026-12-03T00:00:00.000Z',
});
const call = (id: string, args: Record<string, unknown> = {}) => ({ type: 'tool_call' as const, tool_call_id: id, name: 'srv__add', args });
const result = (id: string, text: string, isError = false) => ({
  type: 'tool_result' as const,
  tool_call_id: id,
  name: 'srv__add',
  result: { content: [{ type: 'text', text }] },
  is_error: isError,
});

describe('tool calls and results in prompts', () => {
  it('pairs every call with its result, in call order, with a stand-in for a call that never got one', () => {
    const history = [
      msg('user', [{ type: 'text', text: 'add' }]),
      msg('assistant', [{ type: 'text', text: 'on it' }, call('a', { a: 1 }), call('b', { a: 2 })]),
      msg('tool', [result('b', '2')]),
      msg('tool', [result('a', '1', true)]),
      msg('assistant', [{ type: 'text', text: 'done' }]),
    ];
    const prompt = buildPrompt(history, null);
    expect(prompt.messages.map((m) => m.role)).toEqual(['user', 'assistant', 'tool', 'assistant']);
    expect(prompt.messages[2]).toEqual({
      role: 'tool',
      content: [
        { type: 'tool-result', toolCallId: 'a', toolName: 'srv__add', output: { type: 'error-text', value: '1' } },
        { type: 'tool-result', toolCallId: 'b', toolName: 'srv__add', output: { type: 'text', value: '2' } },
      ],
    });
    // The turn ended before its call ran (evicted mid-step): the provider still gets an answer for it.
    const cut = buildPrompt([history[0], msg('assistant', [call('c')])].filter((m): m is Message => m !== undefined), null);
    expect(cut.messages[2]).toMatchObject({ role: 'tool', content: [{ toolCallId: 'c', output: { type: 'error-text' } }] });

    const withTools = toPrompt(undefined, prompt.messages);
    expect(withTools[1]).toEqual({
      role: 'assistant',
      content: [
        { type: 'text', text: 'on it' },
        { type: 'tool-call', toolCallId: 'a', toolName: 'srv__add', input: { a: 1 } },
        { type: 'tool-call', toolCallId: 'b', toolName: 'srv__add', input: { a: 2 } },
      ],
    });
    expect(withTools[2]?.role).toBe('tool');
    // A call that offers no tools (the servers are gone) gets the history's calls and results as text.
    const without = toPrompt(undefined, prompt.messages, false);
    expect(without.map((m) => m.role)).toEqual(['user', 'assistant', 'assistant', 'assistant']);
    expect(without[1]).toEqual({ role: 'assistant', content: [{ type: 'text', text: 'on it\n[tool call srv__add {"a":1}]\n[tool call srv__add {"a":2}]' }] });
    expect(without[2]).toEqual({ role: 'assistant', content: [{ type: 'text', text: '[tool result srv__add: 1]\n[tool result srv__add: 2]' }] });
  });

  it('counts tool results toward the context, and gives them to a summary as text, each cut', () => {
    const big = 'x'.repeat(40_000);
    const history = [msg('user', [{ type: 'text', text: 'go' }]), msg('assistant', [call('a')]), msg('tool', [result('a', big)])];
    // 40,000 characters of result: about 10,000 tokens (4 characters a token).
    expect(contextTokens(buildPrompt(history, null), history, null)).toBeGreaterThan(10_000);
    const request = summaryRequest(history, null);
    const folded = request.messages.map((m) => (typeof m.content === 'string' ? m.content : '')).join('\n');
    expect(folded).toContain('[tool call srv__add {}]');
    expect(folded).toContain(`[tool result srv__add: ${'x'.repeat(2000)}…]`);
    expect(folded.length).toBeLessThan(3000);
  });

  it('caps a result to its size in JSON, whatever its characters escape to', () => {
    for (const text of ['0123456789'.repeat(5000), '"'.repeat(50_000), '\u0001'.repeat(50_000)]) {
      const capped = capResult({ content: [{ type: 'text', text }] }, 20_000);
      expect(capped.truncated).toBe(true);
      expect(JSON.stringify(capped).length).toBeLessThanOrEqual(20_000);
      expect(resultText(capped)).toMatch(/\n\[truncated: the result had \d+ characters\]$/);
    }
    const small = { content: [{ type: 'text', text: 'ok' }], structuredContent: { sum: 1 } };
    expect(capResult(small, 20_000)).toEqual(small);
  });
});
