// @ts-check
/** `npm run dev`'s settings: the user's .dev.vars, and the local encryption key kept in .data/dev-secrets.json. */
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { chmod, mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parseEnv } from 'node:util';
import { ROOT, errorMessage } from '../migrate.mjs';

const DATA = path.join(ROOT, '.data');
const SECRETS_FILE = path.join(DATA, 'dev-secrets.json');
const DEV_VARS_FILE = path.join(ROOT, '.dev.vars');

/** @returns {Record<string, string>} the user's .dev.vars (wrangler reads the same file), or {} */
export function readDevVars() {
  if (!existsSync(DEV_VARS_FILE)) return {};
  /** @type {Record<string, string>} */
  const vars = {};
  for (const [k, v] of Object.entries(parseEnv(readFileSync(DEV_VARS_FILE, 'utf8')))) if (v !== undefined) vars[k] = v;
  return vars;
}

/**
 * The provider-key encryption key for local development: generated once, then reused from .data/dev-secrets.json.
 * @param {(prefix: string, line: string) => void} out
 * @returns {Promise<string>} base64 of 32 bytes
 */
export async function devEncryptionKey(out) {
  /** @type {Record<string, unknown>} */
  let stored = {};
  if (existsSync(SECRETS_FILE)) {
    try {
      stored = JSON.parse(await readFile(SECRETS_FILE, 'utf8'));
    } catch (e) {
      throw new Error(`${path.relative(ROOT, SECRETS_FILE)} is not valid JSON (${errorMessage(e)}); fix or delete it (deleting it makes provider keys stored locally unreadable)`);
    }
    const key = stored.PROVIDER_KEY_ENCRYPTION_KEY;
    if (typeof key === 'string' && Buffer.from(key, 'base64').length === 32) return key;
    if (key !== undefined) {
      throw new Error(`PROVIDER_KEY_ENCRYPTION_KEY in ${path.relative(ROOT, SECRETS_FILE)} is not base64 of 32 bytes; fix or delete it`);
    }
  }
  const key = randomBytes(32).toString('base64');
  await mkdir(DATA, { recursive: true });
  const tmp = `${SECRETS_FILE}.${process.pid}.tmp`;
  await writeFile(tmp, `${JSON.stringify({ ...stored, PROVIDER_KEY_ENCRYPTION_KEY: key }, null, 2)}\n`, { mode: 0o600 });
  await chmod(tmp, 0o600);
  await rename(tmp, SECRETS_FILE);
  out('[dev]', `generated PROVIDER_KEY_ENCRYPTION_KEY, kept in ${path.relative(ROOT, SECRETS_FILE)}`);
  return key;
}
