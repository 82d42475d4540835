import { cloudflareTest } from '@cloudflare/vitest-pool-workers';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    projects: [
      {
        plugins: [
          cloudflareTest(({ inject }) => ({
            main: './functions/index.ts',
            wrangler: { configPath: './wrangler.toml' },
            miniflare: {
              bindings: {
                DATABASE_URL: inject('pgUrl'),
                PG_WS_PROXY: inject('pgWsProxy'),
                PG_WS_PROXY_TOKEN: inject('pgWsProxyToken'),
                PG_ADMIN_URL: inject('pgAdminUrl'),
                PG_TEMPLATE: inject('pgTemplate'),
                SILENT_PORT: String(inject('silentPort')),
                MOCK_LLM_URL: inject('mockLlmUrl'),
                MOCK_MODEL_CONFIG_ID: inject('mockModelConfigId'),
                MCP_SERVER_URL: inject('mcpServerUrl'),
                // The local MCP server is http on loopback; tool calls time out after 3 s (the timeout test waits for it).
                MCP_ALLOW_INSECURE_URLS: 'true',
                MCP_TOOL_TIMEOUT_MS: '3000',
                PUSH_SERVER_URL: inject('pushServerUrl'),
                PG_CONTROL_URL: inject('pgControlUrl'),
                // The test push service is http on loopback.
                WEBPUSH_ALLOW_INSECURE_ENDPOINTS: 'true',
                SEALED_FROM_NODE: inject('sealedFromNode'),
                // Fail fast in tests: no retries, a short idle timeout.
                LLM_MAX_RETRIES: '0',
                LLM_IDLE_TIMEOUT_MS: '2000',
                PROVIDER_KEY_ENCRYPTION_KEY: 'dGVzdC1rZXktMzItYnl0ZXMtbG9uZy0tLS0tLS0tLS0=',
              },
            },
          })),
        ],
        test: {
          name: 'worker',
          include: ['test/worker/**/*.test.ts'],
          // Chat suites share one database (the Durable Objects' binding) and its default model: one file at a time.
          fileParallelism: false,
          globalSetup: ['./test/global-setup.ts'],
          testTimeout: 20_000,
          hookTimeout: 30_000,
        },
      },
      {
        test: {
          name: 'node',
          include: ['test/node/**/*.test.ts'],
          environment: 'node',
          testTimeout: 60_000,
          hookTimeout: 60_000,
        },
      },
    ],
  },
});
