/**
 * The chat owner's decisions on tool calls that wait for approval (status `requires_action`), made under the room's
 * lock. An approval takes the call out of the waiting ones in Postgres first (one statement: the chat stays
 * `requires_action` while others wait, else it is `running`), then runs it: at most once, even if the object is evicted
 * meanwhile (a call whose result never came is answered as stopped in later prompts). A denial writes the call's error
 * result with the same status change, in one statement. When no call waits any more, the turn goes on from the history.
 */
import { errorResult } from '../llm/tools';
import type { PendingToolCall, ToolResultPart } from '../../functions/core/chats';
import type { ChatState } from './chat-state';
import type { ChatStore } from './chat-store';
import type { StreamHub } from './stream-hub';
import type { Turns } from './turns';

export interface ApprovalDeps {
  state: ChatState;
  store: ChatStore;
  hub: StreamHub;
  turns: Turns;
}

export type Decision = { decision: 'approve' | 'deny'; reason: string | null };

/** Applies a decision on a waiting call; false when the call is not waiting (any more). */
export async function decideToolCall(deps: ApprovalDeps, call: PendingToolCall, d: Decision): Promise<boolean> {
  const { state, store, hub, turns } = deps;
  const chat = state.view();
  if (d.decision === 'deny') {
    const rest = chat.pending_tool_calls.filter((c) => c.tool_call_id !== call.tool_call_id);
    // Never the running turn's id: that turn's loop goes on when its own call is over, not on this write.
    await turns.writeNow({
      turnId: crypto.randomUUID(),
      modelConfigId: null,
      record: null,
      debug: null,
      content: [],
      usage: null,
      cost: null,
      step: null,
      results: [denied(call, d.reason)],
      status: rest.length > 0 ? 'requires_action' : 'running',
      pending: rest,
      lastError: null,
      finalText: '',
    });
    return true;
  }
  const row = await store.takePending(call.tool_call_id);
  if (!row) return false;
  const before = chat.status;
  state.set(row);
  if (row.status !== before) hub.publish([state.statusEvent()]);
  // Calls approved while another runs wait their turn; else the turn goes on with this one.
  if (turns.current) turns.current.approved.push(call);
  else await turns.resume(call);
  return true;
}

function denied(call: PendingToolCall, reason: string | null): ToolResultPart {
  const why = reason?.trim() ? ` Reason: ${reason.trim()}` : '';
  return { type: 'tool_result', tool_call_id: call.tool_call_id, name: call.name, result: errorResult(`The user denied this tool call.${why}`), is_error: true };
}
