/** Shared by the operations tests: a model config of their own, and the records a chat's calls left. */
import { z } from 'zod';
import { testDb } from './helpers';

/** A model config on the mock provider, named for the test (so its insights row is its own). */
export async function ownConfig(model: string, provider = 'openai-compat'): Promise<string> {
  const db = testDb();
  const r = await db.query(
    `INSERT INTO chat_model_configs (provider, model, context_limit, compression_threshold, options, pricing)
     VALUES ($1, $2, 100000, 70, '{}'::jsonb, '{"input_per_mtok":"1000","output_per_mtok":"2000"}'::jsonb) RETURNING id`,
    [provider, model],
  );
  await db.close();
  return z.object({ id: z.string() }).parse(r.rows[0]).id;
}

const RecordRow = z.object({
  turn_id: z.string(),
  user_id: z.string(),
  model_config_id: z.string().nullable(),
  provider: z.string(),
  model: z.string(),
  outcome: z.string(),
  error_kind: z.string().nullable(),
  queue_ms: z.number(),
  first_token_ms: z.number().nullable(),
  total_ms: z.number(),
  input_tokens: z.string(),
  output_tokens: z.string(),
  cost_micros: z.string().nullable(),
  tool_steps: z.number(),
});

export async function recordsOf(chatId: string) {
  const db = testDb();
  const r = await db.query(
    `SELECT turn_id, user_id::text, model_config_id::text, provider, model, outcome, error_kind, queue_ms, first_token_ms, total_ms,
            input_tokens::text, output_tokens::text, cost_micros::text, tool_steps
     FROM chat_turns WHERE chat_id = $1 ORDER BY created_at, id`,
    [chatId],
  );
  await db.close();
  return z.array(RecordRow).parse(r.rows);
}

export async function setDebugRuns(token: string, call: (m: string, p: string, o: object) => Promise<{ status: number; text: string }>, mode: 'off' | 'errors' | 'all') {
  const r = await call('PUT', '/api/v2/chats/config/debug-runs', { token, body: { debug_runs: mode, retention_days: 7 } });
  if (r.status !== 200) throw new Error(r.text);
}
