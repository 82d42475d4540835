/** @chatd-edge/sdk: a typed client for chatd-edge, and a chat stream that resumes by itself. See README.md. */
export { ChatdClient, createClient, type ClientOptions } from './client.js';
export { ChatdError } from './errors.js';
export { backoffMs, retryingFetch, type BackoffOptions, type Fetch, type RetryOptions } from './retry.js';
export { ChatStream, type StreamConnector, type StreamEventMap, type StreamLifecycle, type StreamOptions } from './stream.js';
export { StreamState, type PartialTurn, type ResumeCounts, type StreamStatus } from './stream-state.js';
export { browserTransport, fetchTransport, nodeTransport, type StreamSocket, type StreamTransport } from './transport.js';
export * from './types.js';
