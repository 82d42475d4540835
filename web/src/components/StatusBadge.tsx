import type { ChatStatus } from '@chatd-edge/sdk';

const LABEL: Record<string, string> = {
  waiting: 'idle',
  running: 'answering',
  interrupting: 'stopping',
  error: 'error',
  requires_action: 'waiting for approval',
};

/** A chat's status as a small badge (text, not only colour). */
export function StatusBadge({ status }: { status: ChatStatus }) {
  return <span className={`badge status-${status}`}>{LABEL[status] ?? status}</span>;
}
