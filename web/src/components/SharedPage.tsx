import type { SharedChat } from '@chatd-edge/sdk';
import { useEffect, useState } from 'react';
import { client, errorText } from '../api';
import { FileBase, FileParts } from './FileParts';
import { Markdown } from './Markdown';
import { textOfParts } from './MessageItem';

/** The public, read-only page of a share link (`/s/{token}`): the chat as it was when the link was made. No login. */
export default function SharedPage({ token }: { token: string }) {
  const [data, setData] = useState<SharedChat | null>(null);
  const [error, setError] = useState('');
  useEffect(() => {
    client.sharedChat(token).then(
      (d) => {
        setData(d);
        document.title = `${d.chat.title || 'Shared chat'} · chatd-edge`;
      },
      (e: unknown) => {
        // A revoked, expired or unknown link is a 404: say it plainly (errorText would also send a 401 to the login).
        setError(e instanceof Error && 'status' in e && e.status === 404 ? 'This share link does not exist, was revoked or has expired.' : errorText(e));
        document.title = 'Shared chat · chatd-edge';
      },
    );
  }, [token]);
  return (
    <main className="shared-page" id="main">
      {error ? (
        <>
          <h1>This chat cannot be shown</h1>
          <p role="alert" className="error">
            {error}
          </p>
        </>
      ) : !data ? (
        <p aria-live="polite">Loading…</p>
      ) : (
        <FileBase.Provider value={`/api/v2/shared/${encodeURIComponent(token)}/files/`}>
          <h1>{data.chat.title || 'Untitled chat'}</h1>
          <p className="muted">
            Shared by {data.chat.owner_username} · read-only snapshot · started {new Date(data.chat.created_at).toLocaleString()}
          </p>
          {data.messages
            .filter((m) => m.role === 'user' || m.role === 'assistant')
            .map((m) => {
              const text = textOfParts(m.content, 'text');
              return (
                <article key={m.id} className={`msg msg-${m.role}`} data-message-id={m.id} aria-label={m.role === 'user' ? 'User message' : 'Assistant message'}>
                  <header className="msg-head">
                    <span>{m.role === 'user' ? 'User' : 'Assistant'}</span>
                  </header>
                  {m.role === 'user' ? text && <p className="user-text">{text}</p> : <Markdown text={text} />}
                  <FileParts parts={m.content} />
                </article>
              );
            })}
        </FileBase.Provider>
      )}
    </main>
  );
}
