// @ts-check
/**
 * The single sign-on login's time, for `npm run bench:audit`: the whole local stack (`scripts/dev.mjs`, seeded with
 * the local OpenID provider as its SSO), then `runs` logins as a browser makes them (the Worker's /login redirect, the
 * provider's pages with `login_hint`, the Worker's callback), timing the whole login and the callback alone (state
 * check, code exchange, ID token and JWKS verification, user lookup, group sync, session, audit event).
 */
import { startLocalStack } from './scaletest-stack.mjs';

/**
 * @param {string} root
 * @param {number} runs
 * @returns {Promise<{ total: number[], callback: number[] }>}
 */
export async function benchLogin(root, runs) {
  const stack = await startLocalStack({
    root,
    env: { CHATD_NO_SEED: '0', OPENAI_API_KEY: '', ANTHROPIC_API_KEY: '', GOOGLE_GENERATIVE_AI_API_KEY: '', OPENROUTER_API_KEY: '' },
  });
  const total = [];
  const callback = [];
  try {
    for (let i = 0; i < runs + 3; i++) {
      const t0 = performance.now();
      const start = await fetch(`${stack.url}/api/v2/auth/oidc/login?redirect=/`, { redirect: 'manual' });
      const flow = (start.headers.getSetCookie().find((c) => c.startsWith('oidc_flow=')) ?? '').split(';')[0] ?? '';
      const auth = new URL(start.headers.get('location') ?? '');
      auth.searchParams.set('login_hint', 'alice');
      /** @type {Map<string, string>} */
      const jar = new Map();
      let url = auth.href;
      for (let hop = 0; hop < 8 && !url.startsWith(stack.url); hop++) {
        const r = await fetch(url, { redirect: 'manual', headers: { cookie: [...jar].map(([k, v]) => `${k}=${v}`).join('; ') } });
        for (const c of r.headers.getSetCookie()) {
          const kv = c.split(';')[0] ?? '';
          const at = kv.indexOf('=');
          jar.set(kv.slice(0, at), kv.slice(at + 1));
        }
        url = new URL(r.headers.get('location') ?? '', url).href;
      }
      const t1 = performance.now();
      const done = await fetch(url, { redirect: 'manual', headers: { cookie: flow } });
      const t2 = performance.now();
      if (!done.headers.getSetCookie().some((c) => c.startsWith('session_token='))) {
        throw new Error(`login ${i} failed: ${done.status} ${done.headers.get('location') ?? ''}`);
      }
      if (i >= 3) {
        total.push(t2 - t0);
        callback.push(t2 - t1);
      }
    }
  } finally {
    await stack.stop();
  }
  return { total, callback };
}
