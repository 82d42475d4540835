// @ts-check
/**
 * The mock LLM's control routes, /__mock/*: the global knobs, reset, the recorded requests and the gates. They need
 * no API key, are not recorded, and refuse web pages.
 */
import { MAX_MS, MockError, mergeKnobs } from './mock-llm-knobs.mjs';
import { isObject } from './mock-llm-plan.mjs';
import { sendJson } from './mock-llm-reply.mjs';

/**
 * @typedef {object} MockState
 * @property {() => import('./mock-llm-knobs.mjs').MockConfig} knobs   the global knobs now in force
 * @property {(next: import('./mock-llm-knobs.mjs').MockConfig) => void} setKnobs
 * @property {() => void} reset
 * @property {unknown[]} requests
 * @property {import('./mock-llm-gates.mjs').Gates} gates
 */

/**
 * Answers one /__mock/* request, or throws a MockError.
 * @param {MockState} state
 * @param {{ req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse, signal: AbortSignal, method: string, path: string,
 *   body: unknown, badJson: boolean }} r
 */
export async function handleControl(state, { req, res, signal, method, path, body, badJson }) {
  // Browsers send Origin with every cross-origin request; no tool of ours does. A web page must not drive the mock.
  if (req.headers.origin !== undefined) throw new MockError(403, 'mock: /__mock/* refuses requests from web pages (Origin header)');
  if (badJson) throw new MockError(400, 'mock: the body is not valid JSON');
  if (path === '/__mock/config' && method === 'GET') return sendJson(res, 200, state.knobs());
  if (path === '/__mock/config' && method === 'POST') {
    if (!isObject(body)) throw new MockError(400, 'mock: POST /__mock/config wants a JSON object of knobs');
    state.setKnobs(mergeKnobs(state.knobs(), body));
    return sendJson(res, 200, state.knobs());
  }
  if (path === '/__mock/reset' && method === 'POST') {
    state.reset();
    return sendJson(res, 200, { ok: true });
  }
  if (path === '/__mock/requests' && method === 'GET') return sendJson(res, 200, state.requests);
  const gm = /^\/__mock\/gates\/([A-Za-z0-9_.-]{1,100})(\/open|\/close)?$/.exec(path);
  if (gm) {
    const name = gm[1] ?? '';
    const { gates } = state;
    if (method === 'GET' && !gm[2]) {
      const q = new URL(req.url ?? '/', 'http://mock').searchParams;
      const waiting = Number(q.get('waiting') ?? '0');
      const timeoutMs = Number(q.get('timeout_ms') ?? '10000');
      if (!Number.isInteger(waiting) || waiting < 0 || !Number.isInteger(timeoutMs) || timeoutMs < 0 || timeoutMs > MAX_MS) {
        throw new MockError(400, 'mock: waiting and timeout_ms must be non-negative integers');
      }
      return sendJson(res, 200, waiting > 0 ? await gates.watch(name, waiting, timeoutMs, signal) : gates.state(name));
    }
    if (method === 'POST' && gm[2] === '/open') return sendJson(res, 200, gates.open(name));
    if (method === 'POST' && gm[2] === '/close') return sendJson(res, 200, gates.close(name));
  }
  throw new MockError(404, `mock: no ${method} ${path}`, 'invalid_request_error', 'not_found');
}
