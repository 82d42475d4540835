// @ts-check
/**
 * `npm run dev`'s output and lifecycle: what it prints (with every known secret redacted), and how what it starts is
 * stopped — each start-up step registers how to stop what it started, and a shutdown stops them newest first, once.
 */
import { errorMessage } from '../migrate.mjs';

/** The dev runner's printing: `out`/`err` write `[prefix] line` with every string in `secrets` replaced by `***`. */
export function devOutput() {
  /** Strings never printed as is (passwords, keys); filled in as they become known. */
  const secrets = new Set(/** @type {string[]} */ ([]));
  /** @param {string} s */
  const redact = (s) => {
    let out = s;
    for (const secret of secrets) out = out.split(secret).join('***');
    return out;
  };
  /** @param {string} prefix @param {string} line */
  const out = (prefix, line) => process.stdout.write(`${prefix}${line.trim() ? ` ${redact(line)}` : ''}\n`);
  /** @param {string} prefix @param {string} line */
  const err = (prefix, line) => process.stderr.write(`${prefix}${line.trim() ? ` ${redact(line)}` : ''}\n`);
  return { secrets, out, err };
}

/**
 * @template T
 * @param {Promise<T>} p
 * @param {number} ms
 * @param {string} what
 * @returns {Promise<T>}
 */
export function withTimeout(p, ms, what) {
  /** @type {NodeJS.Timeout | undefined} */
  let timer;
  return Promise.race([
    p,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms / 1000} s`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/** How `npm run dev`'s line saying the whole stack is up begins (scripts that start a stack wait for it). */
export const READY_LINE = 'chatd-edge ready on';

/** Everything started registers how to stop it; `shutdown` stops the `first` ones, then the rest newest first, once, and exits. */
export class Lifecycle {
  /** @param {{ out: (prefix: string, line: string) => void, err: (prefix: string, line: string) => void }} io */
  constructor(io) {
    this.io = io;
    /** @type {{ name: string, stop: () => Promise<void>, first?: boolean }[]} what was started; `first` ones stop first */
    this.running = [];
    /** The start-up step in flight, so a shutdown can wait for it and stop what it started. */
    this.inFlight = Promise.resolve();
    this.stopping = false;
  }

  /**
   * Runs one start-up step; when it yields something to stop later, registers that before anyone can observe it.
   * @template T
   * @param {Promise<T>} p
   * @param {{ name: string, stop: (v: T) => Promise<void> }} [stopper]
   * @returns {Promise<T>}
   */
  step(p, stopper) {
    const q = p.then((v) => {
      if (stopper) this.running.push({ name: stopper.name, stop: () => stopper.stop(v) });
      return v;
    });
    this.inFlight = q.then(
      () => undefined,
      () => undefined,
    );
    return q;
  }

  /**
   * Stops everything started so far (newest first) and exits.
   * @param {number} code
   */
  async shutdown(code) {
    if (this.stopping) return;
    this.stopping = true;
    // Let a start-up step finish so what it started gets stopped too (bounded: a migration may wait on a lock).
    await withTimeout(this.inFlight, 30_000, 'the start-up step in progress').catch((e) => this.io.err('[dev]', errorMessage(e)));
    let exitCode = code;
    const order = [...this.running.filter((r) => r.first), ...this.running.filter((r) => !r.first).reverse()];
    for (const r of order) {
      try {
        await withTimeout(r.stop(), 20_000, `stopping ${r.name}`);
      } catch (e) {
        this.io.err('[dev]', `stopping ${r.name}: ${errorMessage(e)}`);
        if (exitCode === 0) exitCode = 1;
      }
    }
    process.exit(exitCode);
  }

  /** SIGINT, SIGTERM and SIGHUP stop everything (a second one says so and waits). */
  handleSignals() {
    for (const sig of /** @type {const} */ (['SIGINT', 'SIGTERM', 'SIGHUP'])) {
      process.on(sig, () => {
        if (this.stopping) {
          this.io.out('[dev]', `${sig} again: already stopping`);
          return;
        }
        this.io.out('[dev]', `${sig}: stopping`);
        void this.shutdown(0);
      });
    }
  }
}
