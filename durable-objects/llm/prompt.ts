/** A turn's prompt in the provider's format (durable-objects/llm/model.ts sends it). */
import type { ModelMessage } from 'ai';
import type { ProviderPrompt } from './provider-types';

/**
 * The system text and the messages, in the provider's prompt format: text, tool calls (assistant) and tool results
 * (tool messages); other parts are not sent. Without tools in the call (`withTools` false: every server of an earlier
 * step is gone or disabled), calls and results from the history are sent as assistant text instead, since some
 * providers (Anthropic) refuse tool blocks in a request that defines no tools.
 */
export function toPrompt(system: string | undefined, messages: ModelMessage[], withTools = true): ProviderPrompt {
  const prompt: ProviderPrompt = [];
  if (system) prompt.push({ role: 'system', content: system });
  for (const m of messages) {
    if (m.role === 'tool') {
      const results = m.content.flatMap((p) => (p.type === 'tool-result' ? [p] : []));
      if (!withTools) {
        const text = results.map((r) => `[tool result ${r.toolName}: ${providerOutput(r.output).value}]`).join('\n');
        prompt.push({ role: 'assistant', content: [{ type: 'text', text }] });
        continue;
      }
      prompt.push({
        role: 'tool',
        content: results.map((r) => ({ type: 'tool-result', toolCallId: r.toolCallId, toolName: r.toolName, output: providerOutput(r.output) })),
      });
      continue;
    }
    if (m.role === 'user' && typeof m.content !== 'string' && m.content.some((p) => p.type === 'image' || p.type === 'file')) {
      prompt.push({ role: 'user', content: userFileParts(m.content) });
      continue;
    }
    const text =
      typeof m.content === 'string' ? m.content : m.content.map((p) => (p.type === 'text' || p.type === 'reasoning' ? p.text : '')).join('');
    if (m.role === 'system') prompt.push({ role: 'system', content: text });
    else if (m.role === 'user') prompt.push({ role: 'user', content: [{ type: 'text', text }] });
    else {
      const calls = typeof m.content === 'string' ? [] : m.content.flatMap((p) => (p.type === 'tool-call' ? [p] : []));
      if (!withTools) {
        const said = [text, ...calls.map((c) => `[tool call ${c.toolName} ${JSON.stringify(c.input)}]`)].filter(Boolean).join('\n');
        prompt.push({ role: 'assistant', content: [{ type: 'text', text: said }] });
        continue;
      }
      prompt.push({
        role: 'assistant',
        content: [
          ...(text || calls.length === 0 ? [{ type: 'text' as const, text }] : []),
          ...calls.map((c) => ({ type: 'tool-call' as const, toolCallId: c.toolCallId, toolName: c.toolName, input: c.input })),
        ],
      });
    }
  }
  return prompt;
}

type UserContentParts = Exclude<Extract<ModelMessage, { role: 'user' }>['content'], string>;
type ProviderUserParts = Extract<ProviderPrompt[number], { role: 'user' }>['content'];

/** A user message with files in the provider's format: text parts, and files (images too) as file parts of bytes. */
function userFileParts(parts: UserContentParts): ProviderUserParts {
  return parts.flatMap((p): ProviderUserParts => {
    if (p.type === 'text') return [{ type: 'text', text: p.text }];
    if (p.type === 'image' && p.image instanceof Uint8Array) {
      return [{ type: 'file', data: { type: 'data', data: p.image }, mediaType: p.mediaType ?? 'image' }];
    }
    if (p.type === 'file' && p.data instanceof Uint8Array) {
      return [{ type: 'file', data: { type: 'data', data: p.data }, mediaType: p.mediaType, ...(p.filename ? { filename: p.filename } : {}) }];
    }
    return [];
  });
}

/** A tool result's output for the provider: text, or an error text (the only kinds built here). */
function providerOutput(o: { type: string; value?: unknown }): { type: 'text' | 'error-text'; value: string } {
  const value = typeof o.value === 'string' ? o.value : o.value === undefined ? '' : JSON.stringify(o.value);
  return { type: o.type.startsWith('error') ? 'error-text' : 'text', value };
}
