import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { cloudflareTest } from '@cloudflare/vitest-pool-workers';
import type { ProvidedContext } from 'vitest';
import { defineConfig } from 'vitest/config';
import LongestFirst from './test/sequencer.js';
import { ISOLATED, ISOLATED_GROUPS } from './test/isolated-suites.js';
import { workerDeps } from './test/worker-deps.js';

// wrangler refuses a config whose [assets] directory does not exist, and the Worker suites read wrangler.toml: an
// unbuilt web UI (a clean clone before `npm run web:build`) must not stop them. The browser tests build it themselves.
mkdirSync(fileURLToPath(new URL('./web/dist', import.meta.url)), { recursive: true });

// Suites use the SDK from its source, as the type-check does (Node-side scripts run its build, sdk/dist).
const resolve = { alias: { '@chatd-edge/sdk': fileURLToPath(new URL('./sdk/src/index.ts', import.meta.url)) } };


type Inject = <K extends keyof ProvidedContext>(key: K) => ProvidedContext[K];

/** The Worker's bindings in tests: the project's own Postgres, proxy, mock LLM, MCP server and push service. */
const BINDINGS = (inject: Inject) => ({
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
  // The local OpenID provider (scripts/lib/oidc-provider.mjs) is http on loopback.
  OIDC_ISSUER_URL: inject('oidcIssuer'),
  OIDC_ALLOW_INSECURE_ISSUER: 'true',
  // Fail fast in tests: no retries. The idle timeout stays well above how long a test holds a turn at a mock gate on a
  // loaded machine (a gated model call streams nothing): at 2 s, held turns failed with "timeout" under load.
  LLM_MAX_RETRIES: '0',
  LLM_IDLE_TIMEOUT_MS: '15000',
  PROVIDER_KEY_ENCRYPTION_KEY: 'dGVzdC1rZXktMzItYnl0ZXMtbG9uZy0tLS0tLS0tLS0=',
});

/** The npm packages the Worker and its suites import, bundled once for every worker project (test/worker-deps.ts). */
const WORKER_DEPS = workerDeps(fileURLToPath(new URL('.', import.meta.url)));

/** A project of suites running inside workerd, with its own Postgres, proxy, mock LLM and push service (global setup). */
function workerProject(opts: { name: string; include: string[]; exclude?: string[] }) {
  return {
    resolve,
    plugins: [
      cloudflareTest(({ inject }) => ({
        main: './functions/index.ts',
        wrangler: { configPath: './wrangler.toml' },
        miniflare: { bindings: BINDINGS(inject) },
      })),
    ],
    test: {
      name: opts.name,
      include: opts.include,
      exclude: opts.exclude ?? [],
      // Every project runs in one group, two files at a time on the whole (vitest refuses projects of one group with
      // different 'maxWorkers', and the default depends on the machine's cores).
      maxWorkers: 2,
      sequence: { groupOrder: 0 },
      globalSetup: ['./test/global-setup.ts'],
      // Each package loads as one module instead of one per file (test/worker-deps.ts).
      deps: { optimizer: { ssr: { enabled: true, include: WORKER_DEPS } } },
      testTimeout: 20_000,
      hookTimeout: 30_000,
    },
  };
}

export default defineConfig({
  test: {
    sequence: { sequencer: LongestFirst },
    projects: [
      // Each test makes its own users and chats: these files share one world. They run in batches
      // (test/worker/batches/, docs/testing.md), each importing the Worker once; CHATD_TEST_FILES=separate runs them one
      // file each, as named (to run one file alone).
      workerProject({
        name: 'worker',
        include: process.env.CHATD_TEST_FILES === 'separate' ? ['test/worker/*.test.ts'] : ['test/worker/batches/*.test.ts'],
        exclude: [...ISOLATED],
      }),
      // The files that change what every chat sees: a world per group of them (test/isolated-suites.ts), or per file.
      ...(process.env.CHATD_TEST_FILES === 'separate'
        ? ISOLATED.map((file) => workerProject({ name: `worker:${path.basename(file, '.test.ts')}`, include: [file] }))
        : Object.keys(ISOLATED_GROUPS).map((group) => workerProject({ name: `worker:${group}`, include: [`test/worker/isolated/${group}.test.ts`] }))),
      {
        resolve,
        test: {
          name: 'node',
          include: ['test/node/**/*.test.ts'],
          environment: 'node',
          // Runs beside the worker projects (same group), so it takes the same number of workers.
          maxWorkers: 2,
          sequence: { groupOrder: 0 },
          // The browser suites' steps each have a 90 s budget on a loaded machine (test/node/web-helpers.ts UI_BUDGET_MS).
          testTimeout: 240_000,
          hookTimeout: 60_000,
          // A failed browser test tells which requests were unanswered and whether its stack still answers.
          setupFiles: ['./test/node/browser-trouble-setup.ts'],
        },
      },
    ],
  },
});
