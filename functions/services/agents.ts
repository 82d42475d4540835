/** Owners managing agents: a new token (the old one stops at once), and deletion. */
import type { Queryable } from '../core/db';
import { notFound } from '../core/errors';
import { mintToken } from '../lib/tokens';
import { deleteWorkspaceAgent, rotateWorkspaceAgentToken } from '../../sql/generated/agents.queries';
import type { NewAgent } from './agent-context';

/** Replaces an agent's token; agent authentication reads the row each time, so the old token stops with this commit. */
export async function rotateAgentToken(conn: Queryable, id: string): Promise<NewAgent> {
  const t = await mintToken();
  const [row] = await rotateWorkspaceAgentToken.run({ id, token_id: t.id, hashed_secret: t.hashedSecret }, conn);
  if (!row) throw notFound();
  return { id: row.id, name: row.name, token: t.token };
}

/** Deletes an agent and its context; chats created with it keep their pinned copies. */
export async function deleteAgent(conn: Queryable, id: string): Promise<void> {
  if ((await deleteWorkspaceAgent.run({ id }, conn)).length === 0) throw notFound();
}
