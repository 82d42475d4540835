// @ts-check
/**
 * `node scripts/mock-llm.mjs [--port N] [--host H] [--no-auth] [--verbose]`: the mock OpenAI-compatible LLM of
 * scripts/lib/mock-llm.mjs (its header lists the endpoints and the `[[mock ...]]` knobs) as a process.
 * Port: --port, else $CHATD_MOCK_LLM_PORT, else 54331 (0 picks a free one). Prints one line with the URL to give
 * a provider as base_url (`.../v1`); --verbose also logs each request to stderr. SIGINT/SIGTERM stop it cleanly.
 */
import { parseArgs } from 'node:util';
import { startMockLlm } from './lib/mock-llm.mjs';

const DEFAULT_PORT = 54331;

/**
 * @param {string | undefined} raw
 * @param {string} what  where the value came from, for the error
 * @returns {number | undefined}
 */
function parsePort(raw, what) {
  if (raw === undefined || raw.trim() === '') return undefined;
  const port = Number(raw);
  if (!/^\d+$/.test(raw.trim()) || port > 65535) {
    throw new Error(`${what} must be a TCP port number between 0 and 65535, got ${JSON.stringify(raw)}`);
  }
  return port;
}

/** @param {string[]} argv */
async function main(argv) {
  const { values } = parseArgs({
    args: argv,
    options: {
      port: { type: 'string', short: 'p' },
      host: { type: 'string', default: '127.0.0.1' },
      'no-auth': { type: 'boolean', default: false },
      verbose: { type: 'boolean', short: 'v', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write('usage: node scripts/mock-llm.mjs [--port N] [--host H] [--no-auth] [--verbose]\n');
    return;
  }
  const port =
    parsePort(values.port, '--port') ?? parsePort(process.env.CHATD_MOCK_LLM_PORT, 'CHATD_MOCK_LLM_PORT') ?? DEFAULT_PORT;
  const mock = await startMockLlm({
    port,
    host: values.host,
    requireAuth: !values['no-auth'],
    log: values.verbose ? (line) => process.stderr.write(`${line}\n`) : () => {},
  });
  process.stdout.write(`mock LLM (OpenAI-compatible) listening, base_url ${mock.url}/v1\n`);

  let stopping = false;
  /** @param {NodeJS.Signals} sig */
  const stop = (sig) => {
    if (stopping) {
      process.stderr.write(`mock LLM: ${sig} again, exiting now\n`);
      process.exit(1);
    }
    stopping = true;
    mock.close().then(
      () => process.exit(0),
      (/** @type {unknown} */ e) => {
        process.stderr.write(`mock LLM: close failed: ${e instanceof Error ? e.message : String(e)}\n`);
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

main(process.argv.slice(2)).catch((/** @type {unknown} */ e) => {
  process.stderr.write(`mock LLM: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(2);
});
