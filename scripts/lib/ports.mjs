// @ts-check
import net from 'node:net';

/**
 * Fails with a clear message when something already listens on 127.0.0.1:port.
 * @param {number} port
 * @param {string} what    what we wanted to start there
 * @param {string} envVar  the variable that moves it
 */
export async function assertPortFree(port, what, envVar) {
  await new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', (e) => {
      const code = /** @type {NodeJS.ErrnoException} */ (e).code;
      reject(
        new Error(
          code === 'EADDRINUSE'
            ? `port ${port} is already in use, so ${what} cannot listen there. Stop what holds it or set ${envVar} to another port.`
            : `cannot listen on 127.0.0.1:${port} for ${what}: ${code ?? String(e)}`,
        ),
      );
    });
    srv.listen({ host: '127.0.0.1', port, exclusive: true }, () => srv.close(resolve));
  });
}

/**
 * Ports this process already handed out. The kernel may give the same ephemeral port to two listeners that each
 * closed before the next one bound, so two `freePort()` calls in a row could return one port for two services
 * (a stack that then refuses to start: "… are both 37879"). A port is never handed out twice by one process.
 * @type {Set<number>}
 */
const handedOut = new Set();

/** @returns {Promise<number>} a port that was free a moment ago on 127.0.0.1, and not handed out before by this process */
export async function freePort() {
  const [port] = await freePorts(1);
  return /** @type {number} */ (port);
}

/**
 * `n` distinct ports that were free a moment ago on 127.0.0.1. The listeners are all held open until the last one is
 * bound, so the kernel cannot give one port twice; ports handed out earlier by this process are skipped.
 * @param {number} n
 * @returns {Promise<number[]>}
 */
export async function freePorts(n) {
  /** @type {net.Server[]} */
  const held = [];
  /** @type {number[]} */
  const ports = [];
  try {
    for (let tries = 0; ports.length < n; tries++) {
      if (tries > n + 1000) throw new Error(`no ${n} free ports on 127.0.0.1`);
      const srv = net.createServer();
      held.push(srv);
      const port = await new Promise((resolve, reject) => {
        srv.once('error', reject);
        srv.listen({ host: '127.0.0.1', port: 0 }, () => {
          const addr = srv.address();
          resolve(typeof addr === 'object' && addr ? addr.port : 0);
        });
      });
      if (port !== 0 && !handedOut.has(port)) ports.push(port);
    }
  } finally {
    await Promise.all(held.map((srv) => new Promise((resolve) => srv.close(() => resolve(undefined)))));
  }
  for (const p of ports) handedOut.add(p);
  return ports;
}

/**
 * Starts `server` listening on host:port (0: any free port) and resolves with the port it got; a failure to listen
 * (the port taken) rejects.
 * @param {import('node:net').Server} server
 * @param {string} host
 * @param {number} port
 * @returns {Promise<number>}
 */
export async function listenOn(server, host, port) {
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host, port }, () => {
      server.off('error', reject);
      resolve(undefined);
    });
  });
  const addr = server.address();
  return typeof addr === 'object' && addr ? addr.port : port;
}
