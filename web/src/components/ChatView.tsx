import { useCallback, useEffect, useLayoutEffect, useRef, useState } from 'react';
import { client, errorText } from '../api';
import { useChat } from '../hooks/useChat';
import { ChatHeader } from './ChatHeader';
import { Composer } from './Composer';
import { ContextPanel } from './ContextPanel';
import { Markdown } from './Markdown';
import { MessageItem, Reasoning } from './MessageItem';
import { QueuePanel } from './QueuePanel';
import { StatusLine } from './StatusLine';
import { PendingToolCalls, ToolParts } from './ToolParts';

const BUSY = new Set(['running', 'interrupting', 'requires_action']);

/** One chat: history (paged), the answer streaming in, status, queue, composer and pinned context. */
export default function ChatView({ chatId, onChange }: { chatId: string; onChange: () => void }) {
  const m = useChat(chatId);
  const [actionError, setActionError] = useState('');
  const scroller = useRef<HTMLDivElement>(null);
  const stick = useRef(true);
  const status = m.stream?.status?.status ?? m.chat?.status ?? 'waiting';
  const busy = BUSY.has(status);
  const partial = m.stream?.partial ?? null;
  const { setChat } = m;

  // The stream's status event carries no pending calls: read them from the chat's row when it starts waiting.
  useEffect(() => {
    if (status !== 'requires_action') return;
    let cancelled = false;
    client.getChat(chatId).then(
      (c) => {
        if (!cancelled) setChat(c);
      },
      () => undefined,
    );
    return () => {
      cancelled = true;
    };
  }, [status, chatId, setChat]);
  const pending = status === 'requires_action' ? (m.chat?.pending_tool_calls ?? []) : [];
  const decide = useCallback(
    async (toolCallId: string, decision: 'approve' | 'deny') => {
      setChat(await client.decideToolCall(chatId, toolCallId, { decision }));
    },
    [chatId, setChat],
  );

  // Follow the bottom while the reader is there (new messages, the streaming answer); leave them be when they scrolled up.
  useLayoutEffect(() => {
    const el = scroller.current;
    if (el && stick.current) el.scrollTop = el.scrollHeight;
  });

  const act = useCallback(async (what: () => Promise<unknown>): Promise<boolean> => {
    setActionError('');
    try {
      await what();
      return true;
    } catch (e) {
      setActionError(errorText(e));
      return false;
    }
  }, []);
  const onEdit = useCallback((id: number, text: string) => act(() => client.editMessage(chatId, id, { content: text })), [act, chatId]);

  if (m.fatal && !m.chat) {
    return (
      <p role="alert" className="error">
        {m.fatal}
      </p>
    );
  }
  return (
    <section className="chat" aria-label="Chat">
      {m.chat && (
        <ChatHeader
          chat={m.chat}
          onSaved={(c) => {
            m.setChat(c);
            onChange();
          }}
        />
      )}
      {m.chat?.agent_id && <ContextPanel chatId={chatId} stream={m.stream} />}
      <div
        className="messages"
        ref={scroller}
        onScroll={(e) => {
          const el = e.currentTarget;
          stick.current = el.scrollHeight - el.scrollTop - el.clientHeight < 40;
        }}
        aria-live="off"
      >
        {m.hasOlder && (
          <button type="button" className="older" onClick={() => void m.loadOlder()} disabled={m.loadingOlder}>
            {m.loadingOlder ? 'Loading…' : 'Load older messages'}
          </button>
        )}
        {m.messages.map((msg) => (
          <MessageItem key={msg.id} message={msg} busy={busy} onEdit={onEdit} />
        ))}
        {partial && (
          <article className="msg msg-assistant streaming" aria-label="Assistant message (streaming)" aria-busy="true">
            <header className="msg-head">
              <span>Assistant</span>
            </header>
            <Reasoning text={partial.reasoning} />
            <Markdown text={partial.text} />
            <ToolParts parts={partial.parts} />
          </article>
        )}
      </div>
      <PendingToolCalls calls={pending} decide={decide} />
      <StatusLine status={status} connection={m.connection} lastError={m.lastError} fatal={m.fatal} actionError={actionError} />
      <QueuePanel
        queue={m.stream?.queue ?? []}
        onDelete={(qid) => void act(() => client.deleteQueued(chatId, qid))}
        onPromote={(qid) => void act(() => client.promoteQueued(chatId, qid))}
      />
      <Composer
        busy={busy}
        onSend={(text) => act(() => client.sendMessage(chatId, { content: text }))}
        onStop={() => void act(() => client.interrupt(chatId))}
      />
    </section>
  );
}
