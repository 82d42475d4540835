// @ts-check
/**
 * Reads an HTTP request's body as text, up to a size limit (the mock LLM and the local MCP server).
 */

/**
 * @param {import('node:http').IncomingMessage} req
 * @param {number} maxBytes
 * @param {() => Error} tooLarge  the error thrown once the body passes maxBytes
 * @returns {Promise<string>}
 */
export async function readBody(req, maxBytes, tooLarge) {
  /** @type {Buffer[]} */
  const chunks = [];
  let size = 0;
  for await (const c of req) {
    const b = /** @type {Buffer} */ (c);
    size += b.length;
    if (size > maxBytes) throw tooLarge();
    chunks.push(b);
  }
  return Buffer.concat(chunks).toString('utf8');
}
