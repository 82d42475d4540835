/**
 * The dev seed (scripts/lib/dev-seed.mjs) and Node's provider-key sealing (scripts/lib/seal.mjs) against a real
 * Postgres: one scratch server for the file, one freshly migrated database per test. That the Worker opens what
 * Node seals is test/worker/seal-compat.test.ts.
 */
import { webcrypto } from 'node:crypto';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { seedDev, seedDevMcpServer } from '../../scripts/lib/dev-seed.mjs';
import { migrateUp } from '../../scripts/lib/migrate.mjs';
import { startScratchPostgres } from '../../scripts/lib/scratch-db.mjs';
import { openProviderKey, sealProviderKey } from '../../scripts/lib/seal.mjs';

type Server = Awaited<ReturnType<typeof startScratchPostgres>>;

const KEY = Buffer.alloc(32, 7).toString('base64');
const OTHER_KEY = Buffer.alloc(32, 9).toString('base64');
const PROVIDER_ID = '00000000-0000-4000-8000-000000000001';
const MOCK_BASE_URL = 'http://127.0.0.1:54331/v1';

let server: Server;
let dbCount = 0;
const clients: pg.Client[] = [];

beforeAll(async () => {
  server = await startScratchPostgres('dev-seed-test');
});

afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.end().catch(() => undefined)));
});

afterAll(async () => {
  await server.stop();
});

async function connect(url: string): Promise<pg.Client> {
  const c = new pg.Client(url);
  await c.connect();
  clients.push(c);
  return c;
}

/** A new database with every migration applied; returns a client on it. */
async function migratedDatabase(): Promise<pg.Client> {
  const name = `seed_t${++dbCount}`;
  const admin = await connect(server.url);
  await admin.query(`CREATE DATABASE ${name}`);
  const db = await connect(server.urlFor(name));
  await migrateUp(db);
  return db;
}

interface ProviderRow {
  id: string;
  provider: string;
  display_name: string;
  api_key: string | null;
  api_key_key_id: string | null;
  base_url: string;
  enabled: boolean;
}
interface ConfigRow {
  provider: string;
  model: string;
  display_name: string;
  is_default: boolean;
  enabled: boolean;
  deleted: boolean;
  context_limit: number;
}

async function snapshot(db: pg.Client) {
  const providers = (await db.query<ProviderRow>('SELECT * FROM chat_providers ORDER BY provider')).rows;
  const configs = (await db.query<ConfigRow>('SELECT * FROM chat_model_configs ORDER BY provider, model')).rows;
  return { providers, configs };
}

describe('sealProviderKey / openProviderKey', () => {
  it('round-trips, with a fresh IV each time', async () => {
    const a = await sealProviderKey(KEY, PROVIDER_ID, 'sk-secret');
    const b = await sealProviderKey(KEY, PROVIDER_ID, 'sk-secret');
    expect(a.ciphertext).not.toBe(b.ciphertext);
    expect(await openProviderKey(KEY, PROVIDER_ID, a)).toBe('sk-secret');
    expect(await openProviderKey(KEY, PROVIDER_ID, b)).toBe('sk-secret');
    // iv (12) + plaintext (9) + tag (16)
    expect(Buffer.from(a.ciphertext, 'base64').byteLength).toBe(12 + 9 + 16);
    expect(a.ciphertext).not.toContain('sk-secret');
  });

  it('names the key by the first 16 hex chars of SHA-256 of its raw bytes', async () => {
    const { keyId } = await sealProviderKey(KEY, PROVIDER_ID, 'x');
    expect(keyId).toMatch(/^[0-9a-f]{16}$/);
    const digest = Buffer.from(await webcrypto.subtle.digest('SHA-256', Buffer.from(KEY, 'base64'))).toString('hex');
    expect(keyId).toBe(digest.slice(0, 16));
  });

  it('seals with the first key of a comma-separated list and opens with any', async () => {
    const ring = `${OTHER_KEY}, ${KEY}`;
    const old = await sealProviderKey(KEY, PROVIDER_ID, 'old');
    const fresh = await sealProviderKey(ring, PROVIDER_ID, 'new');
    expect(fresh.keyId).toBe((await sealProviderKey(OTHER_KEY, PROVIDER_ID, 'y')).keyId);
    expect(await openProviderKey(ring, PROVIDER_ID, old)).toBe('old');
    expect(await openProviderKey([OTHER_KEY, KEY], PROVIDER_ID, fresh)).toBe('new');
    await expect(openProviderKey(KEY, PROVIDER_ID, fresh)).rejects.toThrow(/is not in PROVIDER_KEY_ENCRYPTION_KEY/);
  });

  it('does not open for another provider id, or once tampered with', async () => {
    const sealed = await sealProviderKey(KEY, PROVIDER_ID, 'sk-secret');
    await expect(openProviderKey(KEY, '00000000-0000-4000-8000-000000000002', sealed)).rejects.toThrow(/failed authentication/);
    const bytes = Buffer.from(sealed.ciphertext, 'base64');
    bytes[bytes.length - 1] = (bytes[bytes.length - 1] ?? 0) ^ 1;
    await expect(openProviderKey(KEY, PROVIDER_ID, { ...sealed, ciphertext: bytes.toString('base64') })).rejects.toThrow(
      /failed authentication/,
    );
  });

  it('rejects a bad secret without printing it', async () => {
    await expect(sealProviderKey('', PROVIDER_ID, 'x')).rejects.toThrow('PROVIDER_KEY_ENCRYPTION_KEY is not set');
    await expect(sealProviderKey('not base64!', PROVIDER_ID, 'x')).rejects.toThrow(/entry 1 is not base64/);
    const short = Buffer.alloc(16, 1).toString('base64');
    const e = await sealProviderKey(short, PROVIDER_ID, 'x').catch((err: unknown) => err);
    expect(String(e)).toMatch(/entry 1 must decode to 32 bytes/);
    expect(String(e)).not.toContain(short);
  });
});

describe('seedDev', () => {
  it('with no real key seeds exactly the mock provider and one default config', async () => {
    const db = await migratedDatabase();
    const lines: string[] = [];
    const result = await seedDev(db, { mockBaseUrl: MOCK_BASE_URL, encryptionKey: KEY, env: {}, log: (l) => lines.push(l) });
    expect(result).toEqual({ seeded: true, models: [{ provider: 'openai-compat', model: 'mock-echo', isDefault: true, keyFrom: null }] });
    const { providers, configs } = await snapshot(db);
    expect(providers).toHaveLength(1);
    expect(providers[0]).toMatchObject({
      provider: 'openai-compat',
      display_name: 'Mock LLM (local)',
      base_url: MOCK_BASE_URL,
      api_key: null,
      api_key_key_id: null,
      enabled: true,
    });
    expect(configs).toEqual([
      expect.objectContaining({
        provider: 'openai-compat',
        model: 'mock-echo',
        display_name: 'Mock echo',
        is_default: true,
        enabled: true,
        deleted: false,
        context_limit: 100000,
      }),
    ]);
    expect(lines.join('\n')).toMatch(/seeded provider openai-compat .*mock-echo \(default\)/);
  });

  it('seeds one provider per real key, the first as default, keys sealed to their row', async () => {
    const db = await migratedDatabase();
    const env = { OPENAI_API_KEY: 'sk-openai-test-123', ANTHROPIC_API_KEY: ' sk-ant-test-456 ', GOOGLE_GENERATIVE_AI_API_KEY: '' };
    const lines: string[] = [];
    await seedDev(db, { mockBaseUrl: MOCK_BASE_URL, encryptionKey: KEY, env, log: (l) => lines.push(l) });
    const { providers, configs } = await snapshot(db);
    expect(providers.map((p) => p.provider)).toEqual(['anthropic', 'openai']);
    expect(configs.map((c) => [c.provider, c.model, c.is_default, c.context_limit])).toEqual([
      ['anthropic', 'claude-sonnet-4-5', false, 200000],
      ['openai', 'gpt-4o-mini', true, 128000],
    ]);
    const expected: Record<string, string> = { openai: 'sk-openai-test-123', anthropic: 'sk-ant-test-456' };
    const { keyId } = await sealProviderKey(KEY, PROVIDER_ID, 'x');
    for (const p of providers) {
      const plain = expected[p.provider] ?? '';
      expect(p.base_url).toBe('');
      expect(p.api_key).not.toBeNull();
      expect(p.api_key).not.toContain(plain);
      expect(p.api_key_key_id).toBe(keyId);
      const sealed = { ciphertext: p.api_key ?? '', keyId: p.api_key_key_id ?? '' };
      expect(await openProviderKey(KEY, p.id, sealed)).toBe(plain);
      // Bound to its own row: the other provider's id does not open it.
      const other = providers.find((q) => q.id !== p.id)?.id ?? '';
      await expect(openProviderKey(KEY, other, sealed)).rejects.toThrow();
    }
    const log = lines.join('\n');
    expect(log).toContain('OPENAI_API_KEY');
    expect(log).not.toContain('sk-openai-test-123');
    expect(log).not.toContain('sk-ant-test-456');
  });

  it('a second call changes nothing', async () => {
    const db = await migratedDatabase();
    await seedDev(db, { mockBaseUrl: MOCK_BASE_URL, encryptionKey: KEY, env: {} });
    const before = await snapshot(db);
    const lines: string[] = [];
    const again = await seedDev(db, {
      mockBaseUrl: 'http://127.0.0.1:1/v1',
      encryptionKey: KEY,
      env: { OPENAI_API_KEY: 'sk-late' },
      log: (l) => lines.push(l),
    });
    expect(again).toEqual({ seeded: false, models: [] });
    expect(await snapshot(db)).toEqual(before);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/not seeding.*OPENAI_API_KEY not applied/);
    expect(lines[0]).not.toContain('sk-late');
  });

  it('leaves a database with an existing provider alone', async () => {
    const db = await migratedDatabase();
    await db.query("INSERT INTO chat_providers (provider, display_name) VALUES ('anthropic', 'Mine')");
    const lines: string[] = [];
    const result = await seedDev(db, { mockBaseUrl: MOCK_BASE_URL, encryptionKey: KEY, env: {}, log: (l) => lines.push(l) });
    expect(result.seeded).toBe(false);
    const { providers, configs } = await snapshot(db);
    expect(providers.map((p) => [p.provider, p.display_name])).toEqual([['anthropic', 'Mine']]);
    expect(configs).toEqual([]);
    expect(lines).toEqual([expect.stringMatching(/^not seeding: .*\(1 providers, 0 live model configs\)$/)]);
  });

  it('leaves a database with a live model config alone, but seeds past deleted ones', async () => {
    const db = await migratedDatabase();
    await db.query(
      "INSERT INTO chat_model_configs (provider, model, context_limit, deleted, deleted_at) VALUES ('openai', 'old', 1000, true, now())",
    );
    expect((await seedDev(db, { mockBaseUrl: MOCK_BASE_URL, env: {} })).seeded).toBe(true);

    const db2 = await migratedDatabase();
    await db2.query("INSERT INTO chat_model_configs (provider, model, context_limit) VALUES ('openai', 'live', 1000)");
    expect((await seedDev(db2, { mockBaseUrl: MOCK_BASE_URL, env: {} })).seeded).toBe(false);
    expect((await db2.query('SELECT count(*)::int AS n FROM chat_providers')).rows[0]).toEqual({ n: 0 });
  });

  it('refuses a real key without an encryption key, and leaves nothing behind', async () => {
    const db = await migratedDatabase();
    await expect(seedDev(db, { mockBaseUrl: MOCK_BASE_URL, env: { OPENROUTER_API_KEY: 'sk-or' } })).rejects.toThrow(
      /OPENROUTER_API_KEY is set but there is no PROVIDER_KEY_ENCRYPTION_KEY/,
    );
    expect(await snapshot(db)).toEqual({ providers: [], configs: [] });
  });
});

describe('seedDevMcpServer', () => {
  it('registers the local MCP server, disabled, once, and never next to servers an admin added', async () => {
    const db = await migratedDatabase();
    const lines: string[] = [];
    expect(await seedDevMcpServer(db, { url: 'http://127.0.0.1:54332/mcp', log: (l) => lines.push(l) })).toEqual({ seeded: true });
    const rows = async () =>
      (await db.query<{ name: string; url: string; enabled: boolean; tool_approval: string; headers: string | null }>(
        'SELECT name, url, enabled, tool_approval, headers FROM mcp_servers ORDER BY name',
      )).rows;
    expect(await rows()).toEqual([{ name: 'local', url: 'http://127.0.0.1:54332/mcp', enabled: false, tool_approval: 'ask', headers: null }]);
    expect(lines).toEqual([expect.stringMatching(/^seeded MCP server local at http:\/\/127\.0\.0\.1:54332\/mcp \(disabled/)]);
    expect(await seedDevMcpServer(db, { url: 'http://127.0.0.1:1/mcp' })).toEqual({ seeded: false });
    expect(await rows()).toHaveLength(1);

    const db2 = await migratedDatabase();
    await db2.query("INSERT INTO mcp_servers (name, url) VALUES ('mine', 'https://mcp.example.com/mcp')");
    expect(await seedDevMcpServer(db2, { url: 'http://127.0.0.1:54332/mcp' })).toEqual({ seeded: false });
    expect((await db2.query('SELECT name FROM mcp_servers')).rows).toEqual([{ name: 'mine' }]);
  });
});
