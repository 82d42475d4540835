// @ts-check
/**
 * The development seed run by `npm run dev` after migrations: an empty database gets LLM providers and model
 * configs so a newcomer can chat at once.
 *   - For each real provider key in the environment (OPENAI_API_KEY, ANTHROPIC_API_KEY,
 *     GOOGLE_GENERATIVE_AI_API_KEY, OPENROUTER_API_KEY, in that order): that provider, its key sealed the way the
 *     Worker seals it (scripts/lib/seal.mjs), and one model config; the first is the default.
 *   - With no real key: the local mock LLM as an `openai-compat` provider without a key, and its `mock-echo`
 *     model as the default.
 * A database that already has any provider, or any live model config, is left alone (an admin's setup is never
 * overwritten, nor added to). The check and the inserts run in one transaction that locks both tables against
 * writers, so two seeds (or a seed and an admin) cannot interleave.
 *
 * `seedDevMcpServer` does the same for tools: a database without MCP servers gets the local one (scripts/lib/
 * mcp-server.mjs) as `local`, disabled, with tool_approval "ask": enable it (PATCH /api/v2/chats/mcp-servers/<id>
 * {"enabled": true}) to give every chat its tools.
 */
import { sealProviderKey } from './seal.mjs';

/**
 * @typedef {{ query: (text: string, values?: unknown[]) => Promise<{ rows: Record<string, unknown>[] }> }} PgLike
 */

/**
 * @typedef {object} SeedSpec
 * @property {string} env            the variable holding the key
 * @property {string} provider       chat_providers.provider
 * @property {string} displayName
 * @property {string} model
 * @property {string} modelName      the config's display name
 * @property {number} contextLimit
 */

/** @type {readonly SeedSpec[]} Real providers, in order of preference for the default. */
export const REAL_PROVIDERS = Object.freeze([
  { env: 'OPENAI_API_KEY', provider: 'openai', displayName: 'OpenAI', model: 'gpt-4o-mini', modelName: 'GPT-4o mini', contextLimit: 128_000 },
  {
    env: 'ANTHROPIC_API_KEY',
    provider: 'anthropic',
    displayName: 'Anthropic',
    model: 'claude-sonnet-4-5',
    modelName: 'Claude Sonnet 4.5',
    contextLimit: 200_000,
  },
  {
    env: 'GOOGLE_GENERATIVE_AI_API_KEY',
    provider: 'google',
    displayName: 'Google',
    model: 'gemini-2.5-flash',
    modelName: 'Gemini 2.5 Flash',
    contextLimit: 1_000_000,
  },
  {
    env: 'OPENROUTER_API_KEY',
    provider: 'openrouter',
    displayName: 'OpenRouter',
    model: 'openai/gpt-4o-mini',
    modelName: 'GPT-4o mini (OpenRouter)',
    contextLimit: 128_000,
  },
]);

export const MOCK_PROVIDER = Object.freeze({
  provider: 'openai-compat',
  displayName: 'Mock LLM (local)',
  model: 'mock-echo',
  modelName: 'Mock echo',
  contextLimit: 100_000,
});

/**
 * @typedef {object} SeedResult
 * @property {boolean} seeded
 * @property {{ provider: string, model: string, isDefault: boolean, keyFrom: string | null }[]} models  what was inserted
 */

/**
 * @param {PgLike} db  one dedicated connection (the transaction spans several statements)
 * @param {object} opts
 * @param {string} opts.mockBaseUrl          the mock LLM's OpenAI base URL, ending in /v1
 * @param {string} [opts.encryptionKey]      PROVIDER_KEY_ENCRYPTION_KEY as the Worker gets it; needed only for real keys
 * @param {Record<string, string | undefined>} [opts.env]  where real provider keys are looked up (default process.env)
 * @param {(line: string) => void} [opts.log]
 * @returns {Promise<SeedResult>}
 */
export async function seedDev(db, { mockBaseUrl, encryptionKey, env = process.env, log = () => {} }) {
  const found = REAL_PROVIDERS.flatMap((spec) => {
    const key = env[spec.env]?.trim();
    return key ? [{ spec, key }] : [];
  });
  if (found.length && !encryptionKey) throw new Error(`${found[0]?.spec.env} is set but there is no PROVIDER_KEY_ENCRYPTION_KEY to seal it with`);

  await db.query('BEGIN');
  try {
    // Writers (the Worker's admin routes, another seed) wait until we commit; readers do not.
    await db.query('LOCK TABLE chat_providers, chat_model_configs IN SHARE ROW EXCLUSIVE MODE');
    const [counts] = (
      await db.query(
        `SELECT (SELECT count(*) FROM chat_providers)::int AS providers,
                (SELECT count(*) FROM chat_model_configs WHERE NOT deleted)::int AS models`,
      )
    ).rows;
    const providers = Number(counts?.providers ?? 0);
    const models = Number(counts?.models ?? 0);
    if (providers > 0 || models > 0) {
      await db.query('ROLLBACK');
      const ignored = found.length ? `; ${found.map((f) => f.spec.env).join(', ')} not applied (add providers through the API)` : '';
      log(`not seeding: providers or models are already configured (${providers} providers, ${models} live model configs)${ignored}`);
      return { seeded: false, models: [] };
    }

    /** @type {SeedResult['models']} */
    const seeded = [];
    /**
     * @param {{ provider: string, displayName: string, baseUrl: string, apiKey: string | null, model: string, modelName: string, contextLimit: number, isDefault: boolean }} p
     */
    const insert = async (p) => {
      const id = globalThis.crypto.randomUUID();
      // The id is bound into the ciphertext, so it is chosen here rather than by the column default.
      const sealed = p.apiKey !== null && encryptionKey ? await sealProviderKey(encryptionKey, id, p.apiKey) : null;
      await db.query(
        `INSERT INTO chat_providers (id, provider, display_name, api_key, api_key_key_id, base_url)
         VALUES ($1, $2, $3, $4, $5, $6)`,
        [id, p.provider, p.displayName, sealed?.ciphertext ?? null, sealed?.keyId ?? null, p.baseUrl],
      );
      await db.query(
        `INSERT INTO chat_model_configs (provider, model, display_name, is_default, context_limit)
         VALUES ($1, $2, $3, $4, $5)`,
        [p.provider, p.model, p.modelName, p.isDefault, p.contextLimit],
      );
    };

    if (found.length) {
      for (const [i, { spec, key }] of found.entries()) {
        await insert({ ...spec, baseUrl: '', apiKey: key, isDefault: i === 0 });
        seeded.push({ provider: spec.provider, model: spec.model, isDefault: i === 0, keyFrom: spec.env });
      }
    } else {
      await insert({ ...MOCK_PROVIDER, baseUrl: mockBaseUrl, apiKey: null, isDefault: true });
      seeded.push({ provider: MOCK_PROVIDER.provider, model: MOCK_PROVIDER.model, isDefault: true, keyFrom: null });
    }
    await db.query('COMMIT');

    for (const s of seeded) {
      const from = s.keyFrom ? `key from ${s.keyFrom}, sealed` : `${MOCK_PROVIDER.displayName} at ${mockBaseUrl}, no key`;
      log(`seeded provider ${s.provider} (${from}) with model ${s.model}${s.isDefault ? ' (default)' : ''}`);
    }
    return { seeded: true, models: seeded };
  } catch (e) {
    await db.query('ROLLBACK').catch(() => undefined);
    throw e;
  }
}

/**
 * Registers the local MCP server, disabled, when the database has no MCP server yet (one transaction, the table
 * locked against writers like the seed above).
 * @param {PgLike} db  one dedicated connection
 * @param {{ url: string, log?: (line: string) => void }} opts  url: its MCP endpoint (http://127.0.0.1:PORT/mcp)
 * @returns {Promise<{ seeded: boolean }>}
 */
export async function seedDevMcpServer(db, { url, log = () => {} }) {
  await db.query('BEGIN');
  try {
    await db.query('LOCK TABLE mcp_servers IN SHARE ROW EXCLUSIVE MODE');
    const [row] = (await db.query('SELECT count(*)::int AS n FROM mcp_servers')).rows;
    if (Number(row?.n ?? 0) > 0) {
      await db.query('ROLLBACK');
      return { seeded: false };
    }
    await db.query("INSERT INTO mcp_servers (name, url, enabled, tool_approval) VALUES ('local', $1, false, 'ask')", [url]);
    await db.query('COMMIT');
    log(`seeded MCP server local at ${url} (disabled: enable it to offer its tools echo, add, sleep, fail, big)`);
    return { seeded: true };
  } catch (e) {
    await db.query('ROLLBACK').catch(() => undefined);
    throw e;
  }
}
