// @ts-check
/**
 * `npm run smoke -- --url https://chat.example.com --email owner@example.com --password '…'`: checks a deployment
 * end to end (scripts/lib/smoke.mjs: /healthz, log in, one chat turn against a model, the answer over the stream)
 * and says what failed in plain words. Exit code 0 when every step passed, 1 when one failed, 2 on bad arguments.
 *
 *   --url URL               the deployment (required)
 *   --email, --password     the user (or SMOKE_EMAIL / SMOKE_PASSWORD, so the password stays out of the shell history)
 *   --create-first-user     on a deployment without users, create the first one (an owner) with them
 *   --username NAME         its username (default: the email's local part)
 *   --model NAME            a model config id, model or display name (default: the deployment's default model)
 *   --message TEXT          what to send (default: a one-sentence question)
 *   --timeout-ms N          how long the turn may take (default 120000)
 *   --keep                  keep the chat (it is deleted by default)
 */
import { parseArgs } from 'node:util';
import { runSmoke } from './lib/smoke.mjs';

/** @param {string} text */
function usage(text) {
  process.stderr.write(`smoke: ${text}\nusage: npm run smoke -- --url <deployment> --email <email> --password <password> [--create-first-user] [--model <name>]\n`);
  process.exit(2);
}

/** @type {ReturnType<typeof parseArgs<{ options: Record<string, { type: 'string' | 'boolean' }> }>>['values']} */
let values = {};
try {
  ({ values } = parseArgs({
    options: {
      url: { type: 'string' },
      email: { type: 'string' },
      password: { type: 'string' },
      'create-first-user': { type: 'boolean' },
      username: { type: 'string' },
      model: { type: 'string' },
      message: { type: 'string' },
      'timeout-ms': { type: 'string' },
      keep: { type: 'boolean' },
    },
    strict: true,
  }));
} catch (e) {
  usage(e instanceof Error ? e.message : String(e));
}
/** @param {string} name */
const str = (name) => {
  const v = values[name];
  return typeof v === 'string' ? v : undefined;
};
const url = str('url');
const email = str('email') ?? process.env.SMOKE_EMAIL;
const password = str('password') ?? process.env.SMOKE_PASSWORD;
if (!url) usage('--url is required');
if (!email || !password) usage('--email and --password (or SMOKE_EMAIL and SMOKE_PASSWORD) are required');
if (url && !/^https?:\/\/[^/]+/.test(url)) usage(`--url must be an http(s) URL, got "${url}"`);
const timeoutText = str('timeout-ms');
const timeoutMs = timeoutText === undefined ? undefined : Number(timeoutText);
if (timeoutMs !== undefined && (!Number.isInteger(timeoutMs) || timeoutMs <= 0)) usage(`--timeout-ms must be a positive number, got "${timeoutText}"`);

const result = await runSmoke(
  {
    url: url ?? '',
    email: email ?? '',
    password: password ?? '',
    createFirstUser: values['create-first-user'] === true,
    username: str('username'),
    model: str('model'),
    message: str('message'),
    timeoutMs,
    keep: values.keep === true,
  },
  (line) => process.stdout.write(`${line}\n`),
);
process.stdout.write(result.ok ? 'smoke: the deployment works\n' : 'smoke: FAILED (see above)\n');
process.exitCode = result.ok ? 0 : 1;
