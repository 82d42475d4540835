/**
 * A chat as a download (`GET /chats/{id}/export`): our JSON format (`ChatExport`, versioned: what `POST /chats/import`
 * takes back), or Markdown for people: the title, each message under its role as a heading, text and code as written,
 * reasoning quoted, tool calls and results summarised in a line (with the arguments in a JSON block).
 */
import type { Chat, Message } from '../core/chats';
import { EXPORT_VERSION, type ChatExport } from '../core/shapes/export';

const RESULT_SUMMARY_CHARS = 300;

export function exportJson(chat: Chat, messages: readonly Message[], now = new Date()): ChatExport {
  return {
    version: EXPORT_VERSION,
    exported_at: now.toISOString(),
    chat: { id: chat.id, title: chat.title, labels: chat.labels, created_at: chat.created_at, forked_from: chat.forked_from },
    messages: messages.map((m) => ({
      role: m.role,
      content: m.content,
      created_at: m.created_at,
      model_config_id: m.model_config_id,
      ...(m.usage ? { usage: m.usage } : {}),
    })),
  };
}

const HEADINGS: Record<Message['role'], string> = { system: 'System', user: 'User', assistant: 'Assistant', tool: 'Tool' };

/** A fence longer than any run of backticks in `text`, so code inside stays code. */
function fence(text: string, lang = ''): string {
  const longest = Math.max(2, ...[...text.matchAll(/`+/g)].map((m) => m[0].length));
  const f = '`'.repeat(longest + 1);
  return `${f}${lang}\n${text}\n${f}`;
}

function one(value: unknown, max: number): string {
  const s = typeof value === 'string' ? value : value === undefined ? '' : JSON.stringify(value);
  return s.length > max ? `${s.slice(0, max)}…` : s;
}

function partMarkdown(p: Message['content'][number]): string {
  switch (p.type) {
    case 'text':
      return 'text' in p && typeof p.text === 'string' ? p.text : '';
    case 'reasoning': {
      const text = 'text' in p && typeof p.text === 'string' ? p.text : '';
      return text
        .split('\n')
        .map((l) => `> ${l}`)
        .join('\n')
        .replace(/^/, '> **Reasoning**\n>\n');
    }
    case 'tool_call':
      return `**Tool call** \`${'name' in p ? String(p.name) : '?'}\`\n\n${fence(JSON.stringify('args' in p ? p.args : {}, null, 2), 'json')}`;
    case 'tool_result': {
      const failed = 'is_error' in p && p.is_error === true;
      return `**Tool result** \`${'name' in p ? String(p.name) : '?'}\`${failed ? ' (error)' : ''}: ${one('result' in p ? p.result : null, RESULT_SUMMARY_CHARS)}`;
    }
    default:
      // A kind added later (a file, issue 26): named, not dropped.
      return `*[${p.type}]*`;
  }
}

export function exportMarkdown(chat: Chat, messages: readonly Message[]): string {
  const out = [`# ${chat.title.trim() || 'Untitled chat'}`, '', `*Exported from chatd-edge; created ${chat.created_at}.*`];
  for (const m of messages) {
    out.push('', `## ${HEADINGS[m.role]}`, '');
    out.push(m.content.map(partMarkdown).filter((s) => s !== '').join('\n\n'));
  }
  return `${out.join('\n')}\n`;
}

/** A file name for the download: the title's safe characters, else the chat id. */
export function exportFileName(chat: Chat, ext: 'json' | 'md'): string {
  const base = chat.title.replace(/[^A-Za-z0-9 _-]+/g, '').trim().replace(/\s+/g, '-').slice(0, 60);
  return `${base || `chat-${chat.id}`}.${ext}`;
}
