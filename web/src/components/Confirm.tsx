import { type ReactNode, useCallback, useEffect, useRef, useState } from 'react';

interface Ask {
  title: string;
  body: ReactNode;
  confirm: string;
  resolve: (ok: boolean) => void;
}

/**
 * A confirmation for a destructive action: a modal <dialog> (focus trapped, Escape cancels) that names what will be
 * lost. `ask` resolves true only when the reader confirms.
 */
export function useConfirm(): { ask: (title: string, body: ReactNode, confirm: string) => Promise<boolean>; dialog: ReactNode } {
  const [open, setOpen] = useState<Ask | null>(null);
  const ask = useCallback(
    (title: string, body: ReactNode, confirm: string) =>
      new Promise<boolean>((resolve) => {
        setOpen({ title, body, confirm, resolve });
      }),
    [],
  );
  const done = (ok: boolean) => {
    open?.resolve(ok);
    setOpen(null);
  };
  return { ask, dialog: open ? <ConfirmDialog ask={open} onDone={done} /> : null };
}

function ConfirmDialog({ ask, onDone }: { ask: Ask; onDone: (ok: boolean) => void }) {
  const ref = useRef<HTMLDialogElement>(null);
  useEffect(() => {
    const d = ref.current;
    if (d && !d.open) d.showModal();
  }, []);
  return (
    <dialog
      ref={ref}
      className="confirm-dialog"
      aria-labelledby="confirm-title"
      onCancel={(e) => {
        e.preventDefault();
        onDone(false);
      }}
    >
      <h2 id="confirm-title">{ask.title}</h2>
      <div className="confirm-body">{ask.body}</div>
      <div className="row end">
        <button type="button" className="secondary" onClick={() => onDone(false)} autoFocus>
          Cancel
        </button>
        <button type="button" className="danger solid" onClick={() => onDone(true)}>
          {ask.confirm}
        </button>
      </div>
    </dialog>
  );
}

/** Copies text to the clipboard; says "Copied" for a moment (or why it could not). */
export function CopyButton({ text, label = 'Copy' }: { text: string; label?: string }) {
  const [state, setState] = useState<'' | 'copied' | 'failed'>('');
  useEffect(() => {
    if (!state) return;
    const t = setTimeout(() => setState(''), 2000);
    return () => clearTimeout(t);
  }, [state]);
  return (
    <button
      type="button"
      className="small"
      onClick={() => {
        navigator.clipboard.writeText(text).then(
          () => setState('copied'),
          () => setState('failed'),
        );
      }}
    >
      {state === 'copied' ? 'Copied' : state === 'failed' ? 'Copy failed' : label}
    </button>
  );
}
