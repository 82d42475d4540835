import type { Message } from '@chatd-edge/sdk';
import { createContext, useContext } from 'react';
import { formatSize } from './Attachments';

/** Where a message's files are read: the signed-in API (the session cookie), or a share link's own file route. */
export const FileBase = createContext('/api/v2/chats/files/');

interface FileView {
  file_id: string;
  name: string;
  media_type: string;
  size: number;
}

function fileParts(parts: Message['content']): FileView[] {
  const out: FileView[] = [];
  for (const p of parts) {
    if (p.type !== 'file') continue;
    const r = p as Partial<Record<keyof FileView, unknown>>;
    if (typeof r.file_id !== 'string') continue;
    out.push({
      file_id: r.file_id,
      name: typeof r.name === 'string' ? r.name : 'file',
      media_type: typeof r.media_type === 'string' ? r.media_type : '',
      size: typeof r.size === 'number' ? r.size : 0,
    });
  }
  return out;
}

/** A message's files: images inline (click opens the full size), others as a download chip with name and size. */
export function FileParts({ parts }: { parts: Message['content'] }) {
  const base = useContext(FileBase);
  const files = fileParts(parts);
  if (files.length === 0) return null;
  return (
    <ul className="msg-files" aria-label="Files">
      {files.map((f) => {
        const url = `${base}${encodeURIComponent(f.file_id)}`;
        return (
          <li key={f.file_id}>
            {f.media_type.startsWith('image/') ? (
              <a href={url} target="_blank" rel="noopener noreferrer">
                <img className="msg-image" src={url} alt={f.name} loading="lazy" />
              </a>
            ) : (
              <a className="chip file-chip" href={url} download={f.name}>
                <span className="chip-name">{f.name}</span> <span className="muted">{formatSize(f.size)}</span>
              </a>
            )}
          </li>
        );
      })}
    </ul>
  );
}
