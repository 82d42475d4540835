import type { Chat, Message, UsableModel } from '@chatd-edge/sdk';
import { useEffect, useRef, useState } from 'react';
import { client, errorText } from '../api';
import { usableModels } from '../chat-data';
import { navigate } from '../router';

/**
 * The conversation tools of docs/chats.md: Fork and Regenerate on messages (slot "message-actions"), Export in a
 * chat's row menu (slot "row-menu"), Import beside "New chat". Errors show where the action was asked for.
 */

/** Fork (any message: a new chat of yours up to it) and, on the chat's last answer, Regenerate with a model choice. */
export function MessageTools({ message, busy, last }: { message: Message; busy: boolean; last: boolean }) {
  const [models, setModels] = useState<UsableModel[]>([]);
  const [model, setModel] = useState('');
  const [error, setError] = useState('');
  const [working, setWorking] = useState(false);
  const regenerates = last && message.role === 'assistant';

  useEffect(() => {
    if (!regenerates) return;
    let on = true;
    void usableModels().then(
      (ms) => {
        if (on) setModels(ms);
      },
      () => undefined,
    );
    return () => {
      on = false;
    };
  }, [regenerates]);

  const fork = async () => {
    setWorking(true);
    setError('');
    try {
      const chat = await client.forkChat(message.chat_id, { message_id: message.id });
      navigate(`/chats/${chat.id}`);
    } catch (e) {
      setError(errorText(e));
    } finally {
      setWorking(false);
    }
  };
  const regenerate = async () => {
    setWorking(true);
    setError('');
    try {
      await client.regenerate(message.chat_id, model ? { model_config_id: model } : {});
    } catch (e) {
      setError(errorText(e));
    } finally {
      setWorking(false);
    }
  };

  return (
    <>
      <button type="button" className="small" disabled={working} onClick={() => void fork()} title="A new chat of yours with the messages up to this one">
        Fork
      </button>
      {regenerates && (
        <>
          {models.length > 1 && (
            <select aria-label="Model to regenerate with" className="small" value={model} onChange={(e) => setModel(e.target.value)} disabled={busy || working}>
              <option value="">Same model</option>
              {models.map((m) => (
                <option key={m.id} value={m.id}>
                  {m.display_name || m.model}
                </option>
              ))}
            </select>
          )}
          <button type="button" className="small" disabled={busy || working} onClick={() => void regenerate()}>
            Regenerate
          </button>
        </>
      )}
      {error && (
        <span className="error" role="alert">
          {error}
        </span>
      )}
    </>
  );
}

/** Saves text as a file the browser downloads. */
function download(name: string, type: string, text: string): void {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

const fileBase = (chat: Chat) => (chat.title || 'chat').replace(/[^\p{L}\p{N} _-]+/gu, '').trim().slice(0, 80) || 'chat';

/** The row menu's Export items: JSON (what Import takes) and Markdown. */
export function ExportItems({ chat, close, onError }: { chat: Chat; close: () => void; onError: (message: string) => void }) {
  const run = async (format: 'json' | 'markdown') => {
    close();
    try {
      if (format === 'json') download(`${fileBase(chat)}.json`, 'application/json', JSON.stringify(await client.exportChat(chat.id), null, 2));
      else download(`${fileBase(chat)}.md`, 'text/markdown', await client.exportMarkdown(chat.id));
    } catch (e) {
      onError(errorText(e));
    }
  };
  return (
    <>
      <li role="none">
        <button type="button" role="menuitem" onClick={() => void run('json')}>
          Export JSON
        </button>
      </li>
      <li role="none">
        <button type="button" role="menuitem" onClick={() => void run('markdown')}>
          Export Markdown
        </button>
      </li>
    </>
  );
}

/** Import: a JSON export becomes a new chat of yours, which opens. */
export function ImportButton() {
  const input = useRef<HTMLInputElement>(null);
  const [error, setError] = useState('');
  const take = async (file: File) => {
    setError('');
    try {
      let body: unknown;
      try {
        body = JSON.parse(await file.text());
      } catch {
        throw new Error('This file is not a JSON export of a chat.');
      }
      const chat = await client.importChat(body as Parameters<typeof client.importChat>[0]);
      navigate(`/chats/${chat.id}`);
    } catch (e) {
      setError(errorText(e));
    }
  };
  return (
    <>
      <button type="button" className="link" onClick={() => input.current?.click()}>
        Import
      </button>
      <input
        ref={input}
        type="file"
        accept="application/json,.json"
        hidden
        aria-label="Import a chat (JSON export)"
        onChange={(e) => {
          const f = e.target.files?.[0];
          e.target.value = '';
          if (f) void take(f);
        }}
      />
      {error && (
        <span className="error" role="alert">
          {error}
        </span>
      )}
    </>
  );
}
