import type { QueuedMessage } from '@chatd-edge/sdk';
import { textOf } from '@chatd-edge/sdk';

interface Props {
  queue: readonly QueuedMessage[];
  onDelete: (id: string) => void;
  onPromote: (id: string) => void;
}

/** Messages waiting for the running turn to end, in order: delete one, or promote it to the front. */
export function QueuePanel({ queue, onDelete, onPromote }: Props) {
  if (!queue.length) return null;
  return (
    <section className="queue" aria-labelledby="queue-heading">
      <h2 id="queue-heading">Queued ({queue.length})</h2>
      <ol>
        {queue.map((q, i) => {
          const text = textOf(q.content);
          return (
            <li key={q.id} data-queued-id={q.id}>
              <span className="queued-text">{text}</span>
              {i > 0 && (
                <button type="button" className="small" onClick={() => onPromote(q.id)} aria-label={`Send next: ${text}`}>
                  Send next
                </button>
              )}
              <button type="button" className="small" onClick={() => onDelete(q.id)} aria-label={`Remove from queue: ${text}`}>
                Remove
              </button>
            </li>
          );
        })}
      </ol>
    </section>
  );
}
