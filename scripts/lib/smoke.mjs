// @ts-check
/**
 * The smoke test of a deployment (`npm run smoke -- --url <deployment>`): each step in order, stopping at the first
 * that fails, with what failed in plain words.
 *   1. GET /healthz answers {"status":"ok"} (the Worker runs and reaches Postgres);
 *   2. logs in with the given email and password, or, with `createFirstUser` on a deployment without users, creates
 *      the first user (an owner) with them;
 *   3. finds a model (the default one, or the one named), starts a chat with one message;
 *   4. opens the chat's stream the way a browser does (a single-use ticket, then a WebSocket with ?ticket=) and
 *      reads the answer until the turn ends;
 *   5. deletes the chat (unless `keep`).
 */
import WebSocket from 'ws';
import { ChatdError, createClient, browserTransport } from '@chatd-edge/sdk';

/**
 * @typedef {object} SmokeOptions
 * @property {string} url
 * @property {string} email
 * @property {string} password
 * @property {boolean} [createFirstUser]  create the first user when the deployment has none
 * @property {string} [username]          its username (default: the email's local part)
 * @property {string} [model]             a model config id, model name or display name (default: the default model)
 * @property {string} [message]
 * @property {number} [timeoutMs]         for the turn (default 120 s)
 * @property {boolean} [keep]             keep the chat
 */

/** @typedef {{ ok: boolean, steps: { step: string, ok: boolean, text: string }[], answer: string | null }} SmokeResult */

export class SmokeFailure extends Error {}

/** @param {unknown} e */
function why(e) {
  if (e instanceof ChatdError) return e.status === 0 ? `no answer (${e.message})` : `${e.status} ${e.message}${e.detail ? ` (${e.detail})` : ''}`;
  if (e instanceof Error) {
    const cause = e.cause instanceof Error ? `: ${e.cause.message}` : '';
    return `${e.message}${cause}`;
  }
  return String(e);
}

/**
 * @param {SmokeOptions} o
 * @param {(line: string) => void} [log]
 * @returns {Promise<SmokeResult>}
 */
export async function runSmoke(o, log = () => {}) {
  const base = o.url.replace(/\/+$/, '');
  /** @type {SmokeResult} */
  const result = { ok: false, steps: [], answer: null };
  /** @param {string} step @param {boolean} ok @param {string} text */
  const note = (step, ok, text) => {
    result.steps.push({ step, ok, text });
    log(`${ok ? 'ok  ' : 'FAIL'} ${step}: ${text}`);
  };
  /**
   * @template T
   * @param {string} step
   * @param {() => Promise<{ value: T, text: string }>} fn
   * @returns {Promise<T>}
   */
  const step = async (step, fn) => {
    try {
      const { value, text } = await fn();
      note(step, true, text);
      return value;
    } catch (e) {
      note(step, false, e instanceof SmokeFailure ? e.message : why(e));
      throw new SmokeFailure(step);
    }
  };

  try {
    await step('healthz', async () => {
      /** @type {Response} */
      let res;
      try {
        res = await fetch(`${base}/healthz`, { signal: AbortSignal.timeout(15_000) });
      } catch (e) {
        throw new SmokeFailure(`nothing answered at ${base} (${why(e)}): is the URL right, and is the Worker deployed?`);
      }
      const text = await res.text();
      /** @type {unknown} */
      let body = null;
      try {
        body = JSON.parse(text);
      } catch {
        // not JSON: said below
      }
      const status = body && typeof body === 'object' ? Reflect.get(body, 'status') : undefined;
      if (res.status === 200 && status === 'ok') return { value: null, text: 'the Worker answers and reaches Postgres' };
      if (res.status === 503) {
        const reason = body && typeof body === 'object' ? String(Reflect.get(body, 'reason') ?? Reflect.get(body, 'message') ?? '') : '';
        throw new SmokeFailure(`the Worker answers but cannot reach Postgres (${reason || text.slice(0, 200)}): check DATABASE_URL (the pooled endpoint) and the Neon project`);
      }
      throw new SmokeFailure(`/healthz answered ${res.status} ${text.slice(0, 200)}: this does not look like a chatd-edge deployment`);
    });

    const anon = createClient({ baseUrl: base });
    const token = await step('login', async () => {
      if (o.createFirstUser) {
        const { needed } = await anon.firstUserNeeded();
        if (needed) {
          const username = o.username ?? (o.email.split('@')[0] || 'owner');
          const first = await anon.createFirstUser({ email: o.email, username, password: o.password });
          return { value: first.session_token, text: `created the first user ${o.email} (an owner)` };
        }
      }
      try {
        const { session_token } = await anon.login({ email: o.email, password: o.password });
        return { value: session_token, text: `logged in as ${o.email}` };
      } catch (e) {
        if (e instanceof ChatdError && e.status === 401) {
          const { needed } = await anon.firstUserNeeded().catch(() => ({ needed: false }));
          throw new SmokeFailure(
            needed
              ? 'the deployment has no users yet: run again with --create-first-user to create the first owner'
              : `the email or password was refused for ${o.email}`,
          );
        }
        throw e;
      }
    });

    const client = createClient({ baseUrl: base, token, transport: browserTransport(WebSocket) });
    const model = await step('model', async () => {
      const models = await client.listModels();
      if (models.length === 0) throw new SmokeFailure('no model is available: an owner adds a provider and a model config (docs/deploy.md, "A model")');
      const chosen = o.model ? models.find((m) => m.id === o.model || m.model === o.model || m.display_name === o.model) : (models.find((m) => m.is_default) ?? null);
      if (!chosen) {
        const names = models.map((m) => m.model).join(', ');
        throw new SmokeFailure(o.model ? `no enabled model is called "${o.model}" (there are: ${names})` : `no model is the default: pass --model (one of: ${names})`);
      }
      return { value: chosen, text: `${chosen.display_name} (${chosen.provider} ${chosen.model})` };
    });

    const chat = await step('chat', async () => {
      const c = await client.createChat({ content: o.message ?? 'Reply with one short sentence: are you there?', model_config_id: model.id, title: 'smoke test' });
      return { value: c, text: `started chat ${c.id}` };
    });

    try {
      result.answer = await step('stream', async () => {
        const stream = client.stream(chat.id);
        try {
          const timeoutMs = o.timeoutMs ?? 120_000;
          /** @param {import('@chatd-edge/sdk').ChatStream} s */
          const ended = (s) => s.status?.status === 'error' || (s.status?.status === 'waiting' && s.messages.some((m) => m.role === 'assistant'));
          await stream.until(ended, { timeoutMs }).catch((/** @type {unknown} */ e) => {
            throw new SmokeFailure(`the stream did not bring the answer: ${why(e)}`);
          });
          if (stream.status?.status === 'error') {
            const now = await client.getChat(chat.id);
            const err = now.last_error;
            throw new SmokeFailure(`the model call failed${err ? ` (${err.kind}): ${err.message}` : ''}: check the provider's key and base URL, and the model's name`);
          }
          const answer = stream.messages
            .filter((m) => m.role === 'assistant')
            .flatMap((m) => m.content.flatMap((p) => (p.type === 'text' ? [p.text] : [])))
            .join('');
          if (!answer.trim()) throw new SmokeFailure('the model answered with no text');
          const short = answer.length > 120 ? `${answer.slice(0, 120)}…` : answer;
          return { value: answer, text: `the answer came over the stream: ${JSON.stringify(short)}` };
        } finally {
          await stream.close();
        }
      });
    } finally {
      if (!o.keep) await client.deleteChat(chat.id).catch(() => undefined);
    }
    result.ok = true;
  } catch (e) {
    if (!(e instanceof SmokeFailure)) note('smoke', false, why(e));
  }
  return result;
}
