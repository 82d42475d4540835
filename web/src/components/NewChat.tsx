import type { UsableModel } from '@chatd-edge/sdk';
import { type SyntheticEvent, useEffect, useState } from 'react';
import { client, errorText } from '../api';
import { navigate } from '../router';

/** A new chat: the model picker (`GET /chats/models`, the default selected) and the first message. */
export function NewChat({ onCreated }: { onCreated: () => void }) {
  const [models, setModels] = useState<UsableModel[] | null>(null);
  const [model, setModel] = useState('');
  const [text, setText] = useState('');
  const [error, setError] = useState('');
  const [busy, setBusy] = useState(false);

  useEffect(() => {
    client.listModels().then(
      (m) => {
        setModels(m);
        setModel((m.find((x) => x.is_default) ?? m[0])?.id ?? '');
      },
      (e: unknown) => {
        setError(errorText(e));
      },
    );
  }, []);

  const submit = async (e: SyntheticEvent) => {
    e.preventDefault();
    if (!text.trim()) return;
    setBusy(true);
    setError('');
    try {
      const chat = await client.createChat({ content: text, ...(model ? { model_config_id: model } : {}) });
      onCreated();
      navigate(`/chats/${chat.id}`);
    } catch (err) {
      setError(errorText(err));
      setBusy(false);
    }
  };

  return (
    <section className="new-chat" aria-labelledby="new-chat-heading">
      <h1 id="new-chat-heading">New chat</h1>
      <form onSubmit={(e) => void submit(e)}>
        <label>
          Model
          <select value={model} onChange={(e) => setModel(e.target.value)} disabled={!models?.length}>
            {models?.length === 0 && <option value="">No model is configured</option>}
            {models?.map((m) => (
              <option key={m.id} value={m.id}>
                {m.display_name || m.model} ({m.provider}){m.is_default ? ' — default' : ''}
              </option>
            ))}
          </select>
        </label>
        <label>
          Message
          <textarea
            value={text}
            rows={4}
            onChange={(e) => setText(e.target.value)}
            autoFocus
            aria-describedby="new-chat-hint"
            onKeyDown={(e) => {
              if (e.key === 'Enter' && !e.shiftKey && !e.nativeEvent.isComposing && !window.matchMedia('(pointer: coarse)').matches) void submit(e);
            }}
          />
        </label>
        <p id="new-chat-hint" className="muted hint-line">
          Enter sends · Shift+Enter adds a line
        </p>
        {error && (
          <p role="alert" className="error">
            {error}
          </p>
        )}
        <button type="submit" disabled={busy || !text.trim()}>
          {busy ? 'Starting…' : 'Start chat'}
        </button>
      </form>
    </section>
  );
}
