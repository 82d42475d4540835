/**
 * What the browser tests tell when one of their tests fails (test/node/browser-trouble-setup.ts, a setup file of the
 * node project): every request a browser context sent that is still unanswered, with its age, whether each web stack
 * answers a plain request from Node now, and the tail of its log.
 *
 * Why: a loaded machine has, rarely, left a page's navigation or an API read unanswered for the whole 90 s budget
 * (docs/testing.md, "When a browser step times out"). Playwright's own message names the step, not the request that
 * never came back, nor whether the stack was stuck as a whole or lost one request.
 */
import type { BrowserContext, Request } from 'playwright-core';
import { lastLines, type LocalStack } from '../../scripts/lib/scaletest-stack.mjs';

const contexts = new Map<BrowserContext, Map<Request, number>>();
const stacks = new Set<LocalStack>();

/** Notes `context`'s requests from now on: sent, then answered or failed. */
export function watchContext(context: BrowserContext): void {
  const pending = new Map<Request, number>();
  contexts.set(context, pending);
  context.on('request', (r) => pending.set(r, Date.now()));
  context.on('requestfinished', (r) => pending.delete(r));
  context.on('requestfailed', (r) => pending.delete(r));
  context.on('close', () => contexts.delete(context));
}

/** A stack whose state a failure should report, until it stops. */
export function watchStack(stack: LocalStack): void {
  stacks.add(stack);
}

export function forgetStack(stack: LocalStack): void {
  stacks.delete(stack);
}

/** Whether `url` answers within 5 s now, and how. */
async function probe(url: string): Promise<string> {
  const t = Date.now();
  try {
    const r = await fetch(url, { signal: AbortSignal.timeout(5000) });
    await r.arrayBuffer();
    return `${r.status} in ${Date.now() - t} ms`;
  } catch (e) {
    return `no answer (${e instanceof Error ? e.message : String(e)}) after ${Date.now() - t} ms`;
  }
}

/** The lines a failed browser test prints; none when no browser context or stack is open. */
export async function troubleReport(): Promise<string[]> {
  const now = Date.now();
  const lines: string[] = [];
  const paths = new Set<string>();
  for (const pending of contexts.values()) {
    for (const [r, since] of pending) {
      lines.push(`unanswered after ${((now - since) / 1000).toFixed(1)} s: ${r.method()} ${r.url()} (${r.resourceType()})`);
      paths.add(`${r.method()} ${new URL(r.url()).pathname}`);
    }
  }
  for (const stack of stacks) {
    lines.push(`stack ${stack.url} (alive: ${String(stack.alive())}): GET /healthz ${await probe(`${stack.url}/healthz`)}; GET /login ${await probe(`${stack.url}/login`)}`);
    // wrangler logs a request when it is answered: the last lines for each unanswered path say whether one ever was.
    const log = lastLines(stack.logFile, 100_000);
    for (const p of paths) {
      const seen = log.filter((l) => l.includes(`${p} `)).slice(-3);
      lines.push(`its log's last lines for ${p}: ${seen.length ? '' : 'none'}`, ...seen.map((l) => `  ${l}`));
    }
    lines.push(`its log, last lines:`, ...log.slice(-30).map((l) => `  ${l}`));
  }
  return lines;
}
