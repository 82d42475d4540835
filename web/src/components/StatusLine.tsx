import type { ChatStatus } from '@chatd-edge/sdk';
import type { Connection } from '../hooks/useChat';
import { StatusBadge } from './StatusBadge';

interface Props {
  status: ChatStatus;
  connection: Connection;
  fatal: string;
  actionError: string;
}

/**
 * The chat's status, the connection ("reconnecting…" while the stream is away: it heals by itself) and the errors of actions (a failed turn's error stays in the conversation), in a
 * line of fixed height so nothing above or below moves while the answer streams.
 */
export function StatusLine({ status, connection, fatal, actionError }: Props) {
  return (
    <div className="status-line" role="status" aria-live="polite">
      <StatusBadge status={status} />
      {connection === 'reconnecting' && <span className="reconnecting">reconnecting…</span>}
      {connection === 'connecting' && <span className="muted">connecting…</span>}
      {fatal && <span className="error">{fatal}</span>}
      {actionError && <span className="error action-error">{actionError}</span>}
    </div>
  );
}
