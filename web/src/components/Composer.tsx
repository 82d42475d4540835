import { type SyntheticEvent, useState } from 'react';

interface Props {
  busy: boolean;
  onSend: (text: string) => Promise<boolean>;
  onStop: () => void;
}

/** The message box: sends now when idle, queues while the chat is busy; Stop interrupts the running turn. */
export function Composer({ busy, onSend, onStop }: Props) {
  const [text, setText] = useState('');
  const [sending, setSending] = useState(false);
  const submit = async (e: SyntheticEvent) => {
    e.preventDefault();
    if (!text.trim() || sending) return;
    setSending(true);
    if (await onSend(text)) setText('');
    setSending(false);
  };
  return (
    <form className="composer" onSubmit={(e) => void submit(e)}>
      <label className="visually-hidden" htmlFor="composer-input">
        Message
      </label>
      <textarea
        id="composer-input"
        value={text}
        rows={2}
        placeholder={busy ? 'The assistant is answering: your message will be queued' : 'Message (Ctrl+Enter sends)'}
        onChange={(e) => setText(e.target.value)}
        onKeyDown={(e) => {
          if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) void submit(e);
        }}
      />
      <div className="composer-actions">
        <button type="submit" disabled={!text.trim() || sending}>
          {busy ? 'Queue' : 'Send'}
        </button>
        <button type="button" className="danger" onClick={onStop} disabled={!busy}>
          Stop
        </button>
      </div>
    </form>
  );
}
