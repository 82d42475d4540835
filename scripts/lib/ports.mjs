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

/** @returns {Promise<number>} a port that was free a moment ago on 127.0.0.1 */
export async function freePort() {
  return await new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen({ host: '127.0.0.1', port: 0 }, () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}
