import type { ChatStatus, UsableModel } from '@chatd-edge/sdk';
import { useCallback, useEffect, useLayoutEffect, useRef, useState } from 'react';
import { client, errorText, withTimeout } from '../api';
import { usableModels } from '../chat-data';
import { useChat } from '../hooks/useChat';
import { ChatHeader } from './ChatHeader';
import { Composer } from './Composer';
import { useConfirm } from './Confirm';
import { ContextPanel } from './ContextPanel';
import { Link } from './Link';
import { Markdown } from './Markdown';
import { MessageItem, Reasoning, textOfParts } from './MessageItem';
import { DebugDrawer } from './DebugDrawer';
import { QueuePanel } from './QueuePanel';
import { StatusLine } from './StatusLine';
import { PendingToolCalls, ToolParts } from './ToolParts';

const BUSY = new Set(['running', 'interrupting', 'requires_action']);

interface Props {
  chatId: string;
  onChange: () => void;
  /** The chat's status as the stream tells it: the sidebar shows it on this chat's row at once. */
  onStatus: (s: ChatStatus) => void;
  onTitle: (t: string) => void;
  /** An owner: the chat gets the "Debug" drawer (its debug runs). */
  isOwner?: boolean;
}

/** One chat: history (paged), the answer streaming in, status, queue, composer and pinned context. */
export default function ChatView({ chatId, onChange, onStatus, onTitle, isOwner = false }: Props) {
  // `?m=<message id>` (a search result): opened at that message, which is marked and scrolled to.
  const focusParam = new URLSearchParams(location.search).get('m');
  const focusId = focusParam !== null && /^\d{1,15}$/.test(focusParam) ? Number(focusParam) : null;
  const m = useChat(chatId, focusId);
  const focused = useRef<number | null>(null);
  const [actionError, setActionError] = useState('');
  const [models, setModels] = useState<UsableModel[]>([]);
  const [model, setModel] = useState('');
  const { ask, dialog } = useConfirm();
  const scroller = useRef<HTMLDivElement>(null);
  const stick = useRef(true);
  /** While older messages load: the reader's distance from the bottom, and the oldest message shown before them. */
  const keepPlace = useRef<{ fromBottom: number; firstId: number | undefined } | null>(null);
  const status = m.stream?.status?.status ?? m.chat?.status ?? 'waiting';
  const busy = BUSY.has(status);
  const partial = m.stream?.partial ?? null;
  const { setChat } = m;

  useEffect(() => {
    onStatus(status);
  }, [status, onStatus]);
  useEffect(() => {
    if (m.chat) onTitle(m.chat.title || 'Untitled chat');
  }, [m.chat, onTitle]);
  useEffect(() => {
    usableModels().then(setModels, () => undefined);
  }, []);
  // The next message's model: the chat's last one, else the default.
  useEffect(() => {
    if (model || models.length === 0) return;
    setModel(m.chat?.last_model_config_id ?? models.find((x) => x.is_default)?.id ?? models[0]?.id ?? '');
  }, [models, m.chat, model]);
  const modelName = useCallback(
    (id: string | null) => {
      const x = models.find((y) => y.id === id);
      return x ? x.display_name || x.model : '';
    },
    [models],
  );

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
    async (toolCallId: string, decision: 'approve' | 'deny', reason?: string) => {
      setChat(await withTimeout(client.decideToolCall(chatId, toolCallId, { decision, ...(reason ? { reason } : {}) }), 'Sending the decision'));
    },
    [chatId, setChat],
  );

  // Follow the bottom while the reader is there (new messages, the streaming answer); leave them be when they scrolled
  // up; after older messages are added above, keep the reader's place (the distance from the bottom).
  useLayoutEffect(() => {
    const el = scroller.current;
    if (!el) return;
    const keep = keepPlace.current;
    if (keep !== null) {
      // Only once the older page is in (renders in between, e.g. the button's "Loading…", change nothing above).
      if (m.messages[0]?.id !== keep.firstId) {
        el.scrollTop = el.scrollHeight - keep.fromBottom;
        keepPlace.current = null;
      } else if (!m.loadingOlder) keepPlace.current = null; // nothing older came, or it failed

    } else if (stick.current) el.scrollTop = el.scrollHeight;
    // Once the focused message is on the page, bring it into view (and stop following the bottom).
    if (focusId !== null && focused.current !== focusId) {
      const target = document.getElementById(`m-${focusId}`);
      if (target) {
        focused.current = focusId;
        stick.current = false;
        target.scrollIntoView({ block: 'center' });
      }
    }
  });
  const loadOlder = async () => {
    const el = scroller.current;
    if (el) keepPlace.current = { fromBottom: el.scrollHeight - el.scrollTop, firstId: m.messages[0]?.id };
    await m.loadOlder();
  };

  const act = useCallback(async (what: () => Promise<unknown>, label: string): Promise<boolean> => {
    setActionError('');
    try {
      await withTimeout(what(), label);
      return true;
    } catch (e) {
      setActionError(errorText(e));
      return false;
    }
  }, []);
  const messages = m.messages;
  const onEdit = useCallback(
    async (id: number, text: string) => {
      const later = messages.filter((x) => x.id > id && x.role !== 'system');
      if (later.length > 0) {
        const yours = later.filter((x) => x.role === 'user').length;
        const body = (
          <p>
            Saving removes the {later.length} later message{later.length === 1 ? '' : 's'} of this chat ({yours} of yours and{' '}
            {later.length - yours} from the assistant and tools), then answers the edited message again.
          </p>
        );
        if (!(await ask('Save and resend?', body, `Remove ${later.length} and resend`))) return false;
      }
      return await act(() => client.editMessage(chatId, id, { content: text }), 'Saving the edit');
    },
    [act, ask, chatId, messages],
  );

  if (m.fatal && !m.chat) {
    return (
      <section className="chat missing" aria-labelledby="missing-heading">
        <h1 id="missing-heading">This chat cannot be opened</h1>
        <p role="alert" className="error">
          {m.fatal}
        </p>
        <p>
          <Link href="/">Back to a new chat</Link>
        </p>
      </section>
    );
  }
  const lastFailure = m.failures.at(-1);
  const lastUser = [...messages].reverse().find((x) => x.role === 'user');
  const retry = async () => {
    if (!lastUser) return;
    await act(() => client.editMessage(chatId, lastUser.id, { content: textOfParts(lastUser.content, 'text') }), 'Retrying');
  };
  const thinking = status === 'running' && (partial === null || (partial.text === '' && partial.parts.every((p) => p.type === 'reasoning')));
  return (
    <section className="chat" aria-label="Chat">
      {dialog}
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
      {isOwner && m.chat && <DebugDrawer chatId={chatId} />}
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
          <button type="button" className="older secondary" onClick={() => void loadOlder()} disabled={m.loadingOlder}>
            {m.loadingOlder ? 'Loading…' : 'Load older messages'}
          </button>
        )}
        {messages.map((msg) => (
          <div
            key={msg.id}
            id={`m-${msg.id}`}
            className={msg.id === focusId ? 'msg-slot marked' : 'msg-slot'}
            aria-current={msg.id === focusId ? 'true' : undefined}
          >
            <MessageItem message={msg} busy={busy || m.chat?.access === 'viewer'} model={modelName(msg.model_config_id)} stopped={m.stopped.has(msg.id)} onEdit={onEdit} last={msg === messages.at(-1)} />
            {m.failures
              .filter((f) => f.afterId === msg.id)
              .map((f) => (
                <article key={`failure-${f.afterId}`} className="msg msg-failed" aria-label="Failed turn">
                  <p className="error turn-error">
                    Error ({f.error.kind}): {f.error.message}
                  </p>
                  {f === lastFailure && msg === messages.at(-1) && msg.role === 'user' && !busy && (
                    <button type="button" onClick={() => void retry()}>
                      Retry
                    </button>
                  )}
                </article>
              ))}
          </div>
        ))}
        {partial && (
          <article className="msg msg-assistant streaming" aria-label="Assistant message (streaming)" aria-busy="true">
            <header className="msg-head">
              <span>Assistant</span>
            </header>
            <Reasoning text={partial.reasoning} thinking={thinking} />
            <Markdown text={partial.text} final={false} />
            <ToolParts parts={partial.parts} />
          </article>
        )}
        {!partial && thinking && (
          <p className="thinking" role="status">
            thinking…
          </p>
        )}
      </div>
      <PendingToolCalls calls={pending} decide={decide} />
      <StatusLine status={status} connection={m.connection} fatal={m.fatal} actionError={actionError} />
      <QueuePanel
        queue={m.stream?.queue ?? []}
        onDelete={(qid) => void act(() => client.deleteQueued(chatId, qid), 'Removing the queued message')}
        onPromote={(qid) => void act(() => client.promoteQueued(chatId, qid), 'Moving the queued message')}
      />
      {m.chat?.access === 'viewer' ? (
        <p className="readonly-note" role={m.fatal ? 'alert' : undefined}>
          {m.fatal
            ? 'Your access to this chat has ended: it is no longer shared with you.'
            : `Shared with you by its owner: you can read it, live, but not write in it.`}
        </p>
      ) : (
      <Composer
        status={status}
        busy={busy}
        models={models}
        model={model}
        onModel={setModel}
        onSend={(text, files) => {
          const content =
            files.length === 0 ? text : [...(text.trim() ? [{ type: 'text' as const, text }] : []), ...files.map((f) => ({ type: 'file' as const, file_id: f.id }))];
          return act(() => client.sendMessage(chatId, { content, ...(model ? { model_config_id: model } : {}) }), 'Sending');
        }}
        onStop={() => {
          m.markStopping();
          void act(() => client.interrupt(chatId), 'Stopping');
        }}
      />
      )}
    </section>
  );
}
