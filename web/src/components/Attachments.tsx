import type { ChatFile } from '@chatd-edge/sdk';
import { useCallback, useRef, useState } from 'react';
import { client, errorText, withTimeout } from '../api';

/** What the server takes (docs/API.md "Files and multimodal input"): checked here first, so a wrong file says so at once. */
export const ACCEPTED = ['image/png', 'image/jpeg', 'image/gif', 'image/webp', 'application/pdf', 'text/plain', 'text/markdown', 'text/csv', 'application/json'];
export const MAX_BYTES = 10 * 1024 * 1024;
export const MAX_FILES = 10;

/** A file's type as the server knows it: the browser's, else by extension (e.g. `.md` often has none). */
function mediaType(f: File): string {
  if (f.type && ACCEPTED.includes(f.type)) return f.type;
  const ext = f.name.split('.').pop()?.toLowerCase() ?? '';
  const byExt = new Map([
    ['md', 'text/markdown'],
    ['markdown', 'text/markdown'],
    ['txt', 'text/plain'],
    ['csv', 'text/csv'],
    ['json', 'application/json'],
    ['pdf', 'application/pdf'],
  ]);
  return byExt.get(ext) ?? f.type;
}

export function formatSize(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KB`;
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}

export interface Attachment {
  key: number;
  name: string;
  size: number;
  state: 'uploading' | 'ready' | 'failed';
  file?: ChatFile;
  error?: string;
}

let nextKey = 1;

/** The composer's attachments: each file uploads as soon as it is added (button, drop or paste). */
export function useAttachments() {
  const [items, setItems] = useState<Attachment[]>([]);
  const add = useCallback((files: readonly File[]) => {
    for (const f of files) {
      const key = nextKey++;
      const type = mediaType(f);
      const base = { key, name: f.name || 'pasted file', size: f.size };
      let error = '';
      if (!ACCEPTED.includes(type)) error = `This type of file (${type || 'unknown'}) is not accepted: images, PDF, text, Markdown, CSV or JSON.`;
      else if (f.size > MAX_BYTES) error = `Too large: ${formatSize(f.size)}, at most 10 MB.`;
      if (error) {
        setItems((prev) => [...prev, { ...base, state: 'failed', error }]);
        continue;
      }
      setItems((prev) => [...prev, { ...base, state: 'uploading' }]);
      withTimeout(client.uploadFile(f, { name: base.name, mediaType: type }), `Uploading ${base.name}`, 60_000).then(
        (file) => setItems((prev) => prev.map((a) => (a.key === key ? { ...a, state: 'ready', file } : a))),
        (e: unknown) => setItems((prev) => prev.map((a) => (a.key === key ? { ...a, state: 'failed', error: errorText(e) } : a))),
      );
    }
  }, []);
  const remove = useCallback((key: number) => setItems((prev) => prev.filter((a) => a.key !== key)), []);
  const clear = useCallback(() => setItems([]), []);
  const ready = items.filter((a) => a.state === 'ready' && a.file).map((a) => a.file as ChatFile);
  const uploading = items.some((a) => a.state === 'uploading');
  const tooMany = ready.length > MAX_FILES;
  return { items, add, remove, clear, ready, uploading, tooMany };
}

/** Slot "composer-attachments": the Attach button (a hidden file input) and a chip per file, with its state. */
export function AttachmentBar({ items, add, remove, tooMany }: Pick<ReturnType<typeof useAttachments>, 'items' | 'add' | 'remove' | 'tooMany'>) {
  const input = useRef<HTMLInputElement>(null);
  return (
    <div className="attachments">
      <input
        ref={input}
        type="file"
        multiple
        hidden
        accept={ACCEPTED.join(',')}
        aria-label="Files to attach"
        onChange={(e) => {
          add([...(e.target.files ?? [])]);
          e.target.value = '';
        }}
      />
      <button type="button" className="secondary small" onClick={() => input.current?.click()} aria-label="Attach files">
        Attach…
      </button>
      {items.length > 0 && (
        <ul className="chips" aria-label="Attached files">
          {items.map((a) => (
            <li key={a.key} className={`chip ${a.state}`} data-state={a.state}>
              <span className="chip-name">{a.name}</span> <span className="muted">{formatSize(a.size)}</span>
              {a.state === 'uploading' && <span className="muted"> · uploading…</span>}
              {a.error && (
                <span className="error" role="alert">
                  {' '}
                  {a.error}
                </span>
              )}
              <button type="button" className="small" aria-label={`Remove ${a.name}`} onClick={() => remove(a.key)}>
                ×
              </button>
            </li>
          ))}
        </ul>
      )}
      {tooMany && (
        <p className="error" role="alert">
          At most {MAX_FILES} files per message.
        </p>
      )}
    </div>
  );
}
