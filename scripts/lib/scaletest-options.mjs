// @ts-check
/**
 * The scale test's command line (scripts/scaletest.mjs): its flags, their defaults and checks, and the help text.
 */
import path from 'node:path';
import { parseArgs } from 'node:util';

export const HELP = `Usage: npm run scaletest -- --chats N --turns M [options]

  --chats N            chats, one WebSocket each (default 10)
  --turns M            turns per chat (default 3)
  --concurrency C      at most C chats mid-turn at once (default: all)
  --rolling            C chats at a time, each from its first turn to its last, its stream closed after it (so at most
                       C streams are open; without it every chat's stream stays open for the whole run)
  --reply-words W      words in each mock reply, streamed one delta each (default 20)
  --chunk-delay-ms D   mock delay between deltas (default 0)
  --prompt P           the message text (default "Hello from the scale test"); chat and turn numbers are appended
  --url URL            use this running stack instead of starting one
  --pg-url URL         its Postgres (for pg_stat_statements / pg_stat_user_tables); without it those figures are left out
  --mock-url URL       the mock LLM base URL (…/v1) for a stack without a default model (default with --url: none)
  --model-config ID    use this model config (even a real one)
  --email E --password P --username U   the owner to create or log in as
  --turn-timeout-ms T  a turn not ended after T ms fails its chat (default 120000)
  --http-sockets S     keep-alive HTTP connections to the Worker (default min(concurrency, 256))
  --stack-arg A        extra argument for wrangler dev (repeatable), e.g. --stack-arg=--var --stack-arg=PG_IDLE_CLOSE_MS:2000
  --label L            free text stored in the results
  --out DIR            where the results JSON goes (default bench/results)
  --keep-stack         keep the own stack's folder under .data/ (Postgres data, stack.log)
  --sample-s S         timeline: every S seconds, turns done, Postgres connections, open files and CPU of the stack (default 5)
  --cpu-profile        (own stack) a V8 CPU profile of the Worker's isolate (Worker + Durable Objects) during the turns,
                       through wrangler's inspector: top modules and functions in the report, the profile next to the JSON
  --priced             (own stack) price the model (3 / 15 per million tokens in / out) and set a default spend limit
                       of 1000000 a month (never reached), so every turn asks its user's spend meter and records a cost
  --no-titles          (own stack) titles written by a model off (deployment setting title_model, set in Postgres
                       before the turns): the turns without the title job's model call per chat, to measure the rest
  --quiet-dev          (own stack) leave out wrangler dev's own instrumentation: --log-level warn (no request log line per
                       request) and the runtime's Network domain off (wrangler enables it and relays every subrequest
                       chunk to its Node process), and the Runtime domain off (it relays every console line of the
                       Worker to wrangler, which prints it: the Worker's log lines are not in stack.log then, but the
                       isolate still runs each log call); measures the app with less of the dev server's overhead
`;

/**
 * @param {string | undefined} v
 * @param {string} name
 * @param {number} fallback
 * @param {number} [min]
 */
function int(v, name, fallback, min = 1) {
  if (v === undefined) return fallback;
  if (!/^\d+$/.test(v) || Number(v) < min) throw new Error(`--${name} wants an integer >= ${min}, got ${JSON.stringify(v)}`);
  return Number(v);
}

/** @typedef {Exclude<ReturnType<typeof parseOptions>, { help: true }>} Options */

/**
 * The run's settings from the command line; throws on a bad or contradictory flag.
 * @param {string[]} args
 * @param {string} root  the project folder (results go to its bench/results by default)
 */
export function parseOptions(args, root) {
  const { values: a } = parseArgs({
    args,
    options: {
      chats: { type: 'string' },
      turns: { type: 'string' },
      concurrency: { type: 'string' },
      'reply-words': { type: 'string' },
      'chunk-delay-ms': { type: 'string' },
      prompt: { type: 'string' },
      url: { type: 'string' },
      'pg-url': { type: 'string' },
      'mock-url': { type: 'string' },
      'model-config': { type: 'string' },
      email: { type: 'string' },
      password: { type: 'string' },
      username: { type: 'string' },
      'turn-timeout-ms': { type: 'string' },
      'http-sockets': { type: 'string' },
      'stack-arg': { type: 'string', multiple: true },
      label: { type: 'string' },
      out: { type: 'string' },
      'keep-stack': { type: 'boolean' },
      'sample-s': { type: 'string' },
      'cpu-profile': { type: 'boolean' },
      'quiet-dev': { type: 'boolean' },
      rolling: { type: 'boolean' },
      priced: { type: 'boolean' },
      'no-titles': { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (a.help) return /** @type {const} */ ({ help: true });
  const chats = int(a.chats, 'chats', 10);
  const turns = int(a.turns, 'turns', 3);
  const concurrency = Math.min(int(a.concurrency, 'concurrency', chats), chats);
  const replyWords = int(a['reply-words'], 'reply-words', 20);
  const chunkDelayMs = int(a['chunk-delay-ms'], 'chunk-delay-ms', 0, 0);
  const turnTimeoutMs = int(a['turn-timeout-ms'], 'turn-timeout-ms', 120_000);
  const httpSockets = int(a['http-sockets'], 'http-sockets', Math.min(concurrency, 256));
  const sampleMs = int(a['sample-s'], 'sample-s', 5) * 1000;
  const cpuProfile = a['cpu-profile'] === true;
  const quietDev = a['quiet-dev'] === true;
  const priced = a.priced === true;
  const noTitles = a['no-titles'] === true;
  if (a.url && noTitles) throw new Error('--no-titles changes a deployment setting: it needs the tool to start its own stack (no --url)');
  if (a.url && (cpuProfile || quietDev)) throw new Error('--cpu-profile and --quiet-dev need the tool to start its own stack (no --url)');
  if (a.url && priced) throw new Error('--priced changes the model config and the spend limit: it needs the tool to start its own stack (no --url)');
  return {
    help: /** @type {const} */ (false),
    chats,
    turns,
    concurrency,
    replyWords,
    chunkDelayMs,
    turnTimeoutMs,
    httpSockets,
    prompt: a.prompt ?? 'Hello from the scale test',
    who: { email: a.email ?? 'scaletest@example.com', password: a.password ?? 'scaletest-password', username: a.username ?? 'scaletest' },
    outDir: path.resolve(a.out ?? path.join(root, 'bench', 'results')),
    sampleMs,
    directive: `[[mock chunks=${replyWords}${chunkDelayMs > 0 ? ` chunk_delay_ms=${chunkDelayMs}` : ''}]]`,
    url: a.url ?? null,
    pgUrl: a['pg-url'] ?? null,
    mockUrl: a['mock-url'] ?? null,
    modelConfigId: a['model-config'] ?? null,
    stackArgs: a['stack-arg'] ?? [],
    label: a.label ?? null,
    keepStack: a['keep-stack'] === true,
    rolling: a.rolling === true,
    cpuProfile,
    quietDev,
    priced,
    noTitles,
  };
}
