// @ts-check
/**
 * The scale test's client side: the SDK (@chatd-edge/sdk) over a keep-alive HTTP pool, the bootstrap (owner, mock
 * provider, model config) and the concurrency helpers. One chat's run (its stream, turns and the checks on what the
 * server sent it) is in scaletest-chat-run.mjs.
 */
import http from 'node:http';
import https from 'node:https';
import WebSocket from 'ws';
import { ChatdError, createClient, nodeTransport } from '@chatd-edge/sdk';

/** @param {unknown} v @returns {v is Record<string, unknown>} */
export const isRecord = (v) => typeof v === 'object' && v !== null && !Array.isArray(v);

/** v as a record of unknowns, {} when it is not one: for reading JSON answers. @param {unknown} v @returns {Record<string, unknown>} */
export const rec = (v) => (isRecord(v) ? v : {});

/** @param {unknown} e */
export const why = (e) => (e instanceof Error ? e.message : String(e));

/**
 * A fetch over node:http(s) with one keep-alive pool of `maxSockets` connections, for the SDK: the scale test's HTTP
 * costs what it did with its hand-written client, and `--http-sockets` still bounds the connections.
 * @param {string} base
 * @param {{ maxSockets: number, onAnswer?: (req: Request, status: number, body: Buffer) => void }} o
 */
export function pooledFetch(base, { maxSockets, onAnswer }) {
  const secure = new URL(base).protocol === 'https:';
  const agent = secure ? new https.Agent({ keepAlive: true, maxSockets }) : new http.Agent({ keepAlive: true, maxSockets });
  const mod = secure ? https : http;
  /** @param {Request} req @returns {Promise<Response>} */
  const fetch = async (req) => {
    const body = req.body ? Buffer.from(await req.arrayBuffer()) : null;
    /** @type {http.OutgoingHttpHeaders} */
    const headers = Object.fromEntries(req.headers);
    if (body) headers['content-length'] = body.length;
    return await new Promise((resolve, reject) => {
      const out = mod.request(req.url, { method: req.method, headers, agent }, (res) => {
        /** @type {Buffer[]} */
        const chunks = [];
        res.on('data', (c) => chunks.push(/** @type {Buffer} */ (c)));
        res.on('error', reject);
        res.on('end', () => {
          const status = res.statusCode ?? 0;
          const h = new Headers();
          for (const [k, v] of Object.entries(res.headers)) for (const x of Array.isArray(v) ? v : v === undefined ? [] : [v]) h.append(k, x);
          const data = Buffer.concat(chunks);
          onAnswer?.(req, status, data);
          resolve(new Response(status === 204 ? null : data, { status, headers: h }));
        });
      });
      out.on('error', reject);
      out.setTimeout(120_000, () => out.destroy(new Error(`${req.method} ${req.url}: no answer within 120 s`)));
      if (body) out.write(body);
      out.end();
    });
  };
  return { fetch, close: () => agent.destroy() };
}

/** The SDK client of the run, signed in once `signInOwner` has run; one HTTP pool and `ws` for the streams. */
export class Api {
  /**
   * @param {string} base   e.g. http://127.0.0.1:8787
   * @param {{ maxSockets: number, error?: (key: string) => void }} opts
   */
  constructor(base, { maxSockets, error }) {
    this.base = base;
    // A 503 or a lost answer to a chat creation or a message post is retried by the SDK (same Idempotency-Key):
    // still counted, so the report shows it.
    this.pool = pooledFetch(base, {
      maxSockets,
      onAnswer: (req, status, body) => {
        if (status !== 503) return;
        /** @type {unknown} */
        let parsed = null;
        try {
          parsed = JSON.parse(body.toString('utf8'));
        } catch {
          // not JSON
        }
        const message = isRecord(parsed) && typeof parsed.message === 'string' ? `: ${parsed.message}` : '';
        error?.(`${req.method} ${new URL(req.url).pathname.replace(/[0-9a-f-]{36}/g, '{id}')} answered 503${message} (retried)`);
      },
    });
    /** @type {string | null} */
    this.token = null;
    this.client = this.make(undefined);
  }

  /** @param {string | undefined} token */
  make(token) {
    return createClient({
      baseUrl: this.base,
      ...(token ? { token } : {}),
      fetch: this.pool.fetch,
      transport: nodeTransport(WebSocket, { perMessageDeflate: false, handshakeTimeout: 60_000 }),
    });
  }

  /** @param {string} token */
  signIn(token) {
    this.token = token;
    this.client = this.make(token);
  }

  close() {
    this.pool.close();
  }
}

/**
 * Signs in as the owner: creates the first user, or (409: one exists) logs in with the same credentials.
 * @param {Api} api
 * @param {{ email: string, username: string, password: string }} who
 * @returns {Promise<{ token: string, userId: string, created: boolean }>}
 */
export async function signInOwner(api, who) {
  let created = false;
  /** @type {string} */
  let token;
  try {
    token = (await api.client.createFirstUser(who)).session_token;
    created = true;
  } catch (e) {
    if (!(e instanceof ChatdError) || e.status !== 409) throw e;
    try {
      token = (await api.client.login({ email: who.email, password: who.password })).session_token;
    } catch (l) {
      if (l instanceof ChatdError && l.status === 401) {
        throw new Error(`a first user already exists and ${who.email} cannot log in with the given password: pass --email and --password of an owner`);
      }
      throw l;
    }
  }
  api.signIn(token);
  const me = await api.client.me();
  if (!me.roles.includes('owner')) throw new Error(`${who.email} is not an owner; the scale test needs one (providers, stream counters)`);
  return { token, userId: me.id, created };
}

/** @param {string} url */
const isLoopback = (url) => {
  try {
    return ['127.0.0.1', 'localhost', '[::1]', '::1'].includes(new URL(url).hostname);
  } catch {
    return false;
  }
};

/**
 * The model config the chats use, set up when missing:
 *   - `modelConfigId` when given (used as is);
 *   - else the live default, when its provider is `openai-compat` on this machine (a mock: a real model would
 *     be called chats × turns times, so it is refused unless named with --model-config);
 *   - else, with no default at all, an `openai-compat` provider on `mockBaseUrl` (created unless one exists with
 *     that base URL) and a default config `mock-echo` on it, compaction off.
 * @param {Api} api
 * @param {{ mockBaseUrl: string | null, modelConfigId: string | null, log: (line: string) => void }} opts
 * @returns {Promise<{ id: string, label: string, created: string[] }>}
 */
export async function ensureModel(api, { mockBaseUrl, modelConfigId, log }) {
  const list = await api.client.listModelConfigs();
  const label = (/** @type {{ provider: string, model: string, id: string }} */ c) => `${c.provider}/${c.model} (${c.id})`;
  if (modelConfigId) {
    const c = list.find((x) => x.id === modelConfigId);
    if (!c) throw new Error(`--model-config ${modelConfigId}: no live model config with that id`);
    return { id: modelConfigId, label: label(c), created: [] };
  }
  const plist = await api.client.listProviders();
  const def = list.find((c) => c.is_default);
  if (def) {
    const base = plist.find((x) => x.provider === def.provider)?.base_url ?? '';
    if (def.provider !== 'openai-compat' || !isLoopback(base)) {
      throw new Error(
        `the default model is ${label(def)} on ${base || 'its provider'}, not a local mock: the scale test would call it for every turn. ` +
          'Pass --model-config <id> to use it anyway, or make a mock the default.',
      );
    }
    return { id: def.id, label: `${label(def)} via ${base}`, created: [] };
  }
  if (!mockBaseUrl) throw new Error('there is no default model config: pass --mock-url (the mock LLM base URL, …/v1) so one can be created');
  /** @type {string[]} */
  const created = [];
  const existing = plist.find((x) => x.provider === 'openai-compat');
  if (existing) {
    if (existing.base_url !== mockBaseUrl) {
      throw new Error(`an openai-compat provider already exists with base_url ${existing.base_url}, not ${mockBaseUrl}; pass --model-config, or point it at the mock`);
    }
  } else {
    await api.client.createProvider({ provider: 'openai-compat', display_name: 'Mock LLM (scale test)', base_url: mockBaseUrl });
    created.push(`provider openai-compat -> ${mockBaseUrl}`);
  }
  const cfg = await api.client.createModelConfig({
    provider: 'openai-compat',
    model: 'mock-echo',
    display_name: 'Mock echo (scale test)',
    context_limit: 1_000_000,
    compression_threshold: 100,
    is_default: true,
  });
  created.push(`default model config openai-compat/mock-echo (${cfg.id})`);
  for (const c of created) log(`created ${c}`);
  return { id: cfg.id, label: `openai-compat/mock-echo (${cfg.id}) via ${mockBaseUrl}`, created };
}

/** A FIFO counting semaphore. */
export class Semaphore {
  /** @param {number} n */
  constructor(n) {
    this.free = n;
    /** @type {(() => void)[]} */
    this.waiting = [];
    this.held = 0;
  }

  /** @returns {Promise<() => void>} the release function */
  async acquire() {
    if (this.free > 0) {
      this.free -= 1;
    } else {
      await new Promise((resolve) => {
        this.waiting.push(() => resolve(undefined));
      });
    }
    this.held += 1;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.held -= 1;
      const next = this.waiting.shift();
      if (next) next();
      else this.free += 1;
    };
  }
}

/**
 * Runs fn over items with at most `limit` at a time.
 * @template T, R
 * @param {readonly T[]} items
 * @param {number} limit
 * @param {(item: T, index: number) => Promise<R>} fn
 * @returns {Promise<R[]>}
 */
export async function mapLimit(items, limit, fn) {
  /** @type {R[]} */
  const out = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(/** @type {T} */ (items[i]), i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}
