import type { ChatFile, ChatStatus, UsableModel } from '@chatd-edge/sdk';
import { type SyntheticEvent, useEffect, useRef, useState } from 'react';
import { AttachmentBar, useAttachments } from './Attachments';

interface Props {
  status: ChatStatus;
  busy: boolean;
  models: readonly UsableModel[];
  /** The model of the next message ('' = the chat's own). */
  model: string;
  onModel: (id: string) => void;
  onSend: (text: string, files: readonly ChatFile[]) => Promise<boolean>;
  onStop: () => void;
}

/** On a touch screen Enter adds a newline and the Send button sends (there is no Shift on a phone's keyboard). */
const coarse = () => window.matchMedia('(pointer: coarse)').matches;

/**
 * The message box: Enter sends (Shift+Enter: a newline), queued while the chat is busy; Stop (shown only while a turn
 * runs) interrupts it; the model picker sets the model of the next message. It takes the focus when the chat opens.
 * Slot "composer-attachments": the files feature adds its button and chips before the box.
 */
export function Composer({ status, busy, models, model, onModel, onSend, onStop }: Props) {
  const [text, setText] = useState('');
  const [sending, setSending] = useState(false);
  const box = useRef<HTMLTextAreaElement>(null);
  const files = useAttachments();
  const [dragging, setDragging] = useState(false);
  const canSend = (text.trim() !== '' || files.ready.length > 0) && !files.uploading && !files.tooMany;
  useEffect(() => {
    box.current?.focus();
  }, []);
  const submit = async (e: SyntheticEvent) => {
    e.preventDefault();
    if (!canSend || sending) return;
    setSending(true);
    if (await onSend(text, files.ready)) {
      setText('');
      files.clear();
    }
    setSending(false);
    box.current?.focus();
  };
  const placeholder =
    status === 'requires_action'
      ? 'A tool call waits for your approval (above): a message now is queued'
      : busy
        ? 'The assistant is answering: your message will be queued'
        : 'Message';
  return (
    <form
      className={`composer${dragging ? ' dragging' : ''}`}
      onSubmit={(e) => void submit(e)}
      onDragOver={(e) => {
        if (!e.dataTransfer.types.includes('Files')) return;
        e.preventDefault();
        setDragging(true);
      }}
      onDragLeave={() => setDragging(false)}
      onDrop={(e) => {
        if (e.dataTransfer.files.length === 0) return;
        e.preventDefault();
        setDragging(false);
        files.add([...e.dataTransfer.files]);
      }}
    >
      <div className="composer-main">
        <AttachmentBar items={files.items} add={files.add} remove={files.remove} tooMany={files.tooMany} />
        <label className="visually-hidden" htmlFor="composer-input">
          Message
        </label>
        <textarea
          id="composer-input"
          ref={box}
          value={text}
          rows={2}
          placeholder={placeholder}
          aria-describedby="composer-hint"
          onChange={(e) => setText(e.target.value)}
          onPaste={(e) => {
            if (e.clipboardData.files.length === 0) return;
            e.preventDefault();
            files.add([...e.clipboardData.files]);
          }}
          onKeyDown={(e) => {
            if (e.key === 'Enter' && !e.shiftKey && !e.nativeEvent.isComposing && !coarse()) void submit(e);
          }}
        />
        <div className="composer-foot">
          {models.length > 1 && (
            <label className="inline">
              <span className="visually-hidden">Model for the next message</span>
              <select aria-label="Model for the next message" value={model} onChange={(e) => onModel(e.target.value)}>
                {models.map((m) => (
                  <option key={m.id} value={m.id}>
                    {m.display_name || m.model}
                  </option>
                ))}
              </select>
            </label>
          )}
          <span id="composer-hint" className="muted hint">
            Enter sends · Shift+Enter adds a line · drop or paste files to attach
          </span>
        </div>
      </div>
      <div className="composer-actions">
        <button type="submit" disabled={!canSend || sending}>
          {sending ? 'Sending…' : busy ? 'Queue' : 'Send'}
        </button>
        {busy && (
          <button type="button" className="danger" onClick={onStop}>
            Stop
          </button>
        )}
      </div>
    </form>
  );
}
