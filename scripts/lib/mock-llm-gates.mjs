// @ts-check
/**
 * The mock LLM's gates: named points where replies wait until a test opens them (the `gate` knob), and the waits a
 * test makes for requests to arrive there (GET /__mock/gates/NAME?waiting=N).
 */

/** @typedef {{ open: boolean, arrived: number, waiters: Set<() => void>, watchers: Set<() => void> }} Gate */

export class Gates {
  constructor() {
    /** @type {Map<string, Gate>} gates start closed, made on first use */
    this.gates = new Map();
  }

  /** @param {string} name @returns {Gate} */
  get(name) {
    let g = this.gates.get(name);
    if (!g) {
      g = { open: false, arrived: 0, waiters: new Set(), watchers: new Set() };
      this.gates.set(name, g);
    }
    return g;
  }

  /** @param {string} name */
  state(name) {
    const g = this.get(name);
    return { name, open: g.open, waiting: g.waiters.size, arrived: g.arrived };
  }

  /**
   * Waits at a gate until it opens; false when the client went away first.
   * @param {string} name
   * @param {AbortSignal} signal
   * @returns {Promise<boolean>}
   */
  pass(name, signal) {
    const g = this.get(name);
    g.arrived += 1;
    if (g.open) return Promise.resolve(!signal.aborted);
    return new Promise((resolve) => {
      const go = () => {
        g.waiters.delete(go);
        signal.removeEventListener('abort', go);
        for (const w of g.watchers) w();
        resolve(!signal.aborted);
      };
      g.waiters.add(go);
      signal.addEventListener('abort', go, { once: true });
      for (const w of g.watchers) w();
    });
  }

  /**
   * Answers once `waiting` requests wait at the gate, or at the timeout.
   * @param {string} name
   * @param {number} waiting
   * @param {number} timeoutMs
   * @param {AbortSignal} signal
   */
  watch(name, waiting, timeoutMs, signal) {
    const g = this.get(name);
    return new Promise((resolve) => {
      const check = () => {
        if (g.waiters.size < waiting && !signal.aborted) return;
        done(false);
      };
      const timer = setTimeout(() => done(true), timeoutMs);
      const done = (/** @type {boolean} */ timedOut) => {
        clearTimeout(timer);
        g.watchers.delete(check);
        signal.removeEventListener('abort', check);
        resolve({ ...this.state(name), ...(timedOut ? { timed_out: true } : {}) });
      };
      g.watchers.add(check);
      signal.addEventListener('abort', check, { once: true });
      check();
    });
  }

  /** Opens a gate: the requests waiting at it go on, later ones pass it. @param {string} name */
  open(name) {
    const g = this.get(name);
    g.open = true;
    const released = g.waiters.size;
    for (const w of [...g.waiters]) w();
    return { ...this.state(name), released };
  }

  /** @param {string} name */
  close(name) {
    this.get(name).open = false;
    return this.state(name);
  }

  /** Lets every waiting request go and forgets every gate: nothing stays held by a gate of an earlier test. */
  clear() {
    for (const g of this.gates.values()) for (const w of [...g.waiters]) w();
    this.gates.clear();
  }
}
