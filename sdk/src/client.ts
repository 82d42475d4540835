/**
 * `createClient`: a typed method for every route of chatd-edge (types generated from its OpenAPI document, calls
 * made by openapi-fetch), errors thrown as one `ChatdError`, paged lists as async iterators, an automatic
 * `Idempotency-Key` on chat creation and message posts (retried on network errors and 503), and `stream()`.
 */
import createFetchClient, { type Client } from 'openapi-fetch';
import { ChatdError } from './errors.js';
import { parseTicket } from './frames.js';
import { retryingFetch, type Fetch, type RetryOptions } from './retry.js';
import { ChatStream, type StreamOptions } from './stream.js';
import { browserTransport, nodeTransport, type StreamTransport } from './transport.js';
import type { Chat, ChatExport, ChatFile, Message, paths } from './types.js';

export interface ClientOptions {
  /** The deployment's origin, e.g. `https://chat.example.com` (the API lives under `/api/v2`). */
  baseUrl: string;
  /** A session token or API key, sent as `Authorization: Bearer`. */
  token?: string;
  /** A session token sent as the `session_token` cookie (Node; a browser sends its own cookie by itself). */
  cookie?: string;
  /** The fetch to use (default: the global one). Workers tests pass `exports.default.fetch`. */
  fetch?: Fetch;
  /** A WebSocket class that takes headers, like the `ws` package in Node (default: the global WebSocket, with tickets). */
  WebSocket?: new (url: string, options: { headers: Record<string, string> }) => unknown;
  /** How the stream opens sockets, when neither of the above fits (e.g. `fetchTransport(fetch)` in Workers). */
  transport?: StreamTransport;
  /** Retries of keyed requests (chat creation, message posts): tries, backoff. */
  retry?: RetryOptions;
}

type Body<P extends keyof paths, M extends keyof paths[P]> = paths[P][M] extends {
  requestBody?: { content: { 'application/json': infer B } };
}
  ? B
  : never;
type Query<P extends keyof paths, M extends keyof paths[P]> = paths[P][M] extends { parameters: { query?: infer Q } } ? NonNullable<Q> : never;

/** An openapi-fetch answer (a success's data, or an error's body). */
interface Answer<T> {
  data?: T;
  error?: unknown;
  response: Response;
}

/** The data of a success, or the ChatdError the answer stands for. */
async function ok<T>(call: Promise<Answer<T>>): Promise<T> {
  let r: Answer<T>;
  try {
    r = await call;
  } catch (e) {
    throw e instanceof ChatdError ? e : ChatdError.network(e);
  }
  if (!r.response.ok) throw ChatdError.fromBody(r.response.status, r.error, r.response.headers);
  // A success: openapi-fetch parsed the body the route's 2xx answer declares (undefined for a 204).
  return r.data as T;
}

const key = (k?: string): string => k ?? crypto.randomUUID();

export class ChatdClient {
  /** The underlying openapi-fetch client, typed by the API's paths, for anything the methods do not cover. */
  readonly raw: Client<paths>;

  constructor(readonly options: ClientOptions) {
    const base = options.fetch ?? ((req: Request) => globalThis.fetch(req));
    this.raw = createFetchClient<paths>({
      baseUrl: options.baseUrl.replace(/\/+$/, ''),
      fetch: retryingFetch(base, options.retry),
      headers: this.credentials(),
    });
  }

  /** The same client acting with another token. */
  as(token: string): ChatdClient {
    return new ChatdClient({ ...this.options, token, cookie: undefined });
  }

  // ------------------------------------------------------------------ users and credentials

  createFirstUser = (body: Body<'/api/v2/users/first', 'post'>) => ok(this.raw.POST('/api/v2/users/first', { body }));
  /** Whether the deployment still needs its first user (`{needed}`): public. */
  firstUserNeeded = () => ok(this.raw.GET('/api/v2/users/first'));
  login = (body: Body<'/api/v2/users/login', 'post'>) => ok(this.raw.POST('/api/v2/users/login', { body }));
  logout = () => ok(this.raw.POST('/api/v2/users/logout'));
  me = () => ok(this.raw.GET('/api/v2/users/me'));
  createUser = (body: Body<'/api/v2/users', 'post'>) => ok(this.raw.POST('/api/v2/users', { body }));
  listUsers = (query: Query<'/api/v2/users', 'get'> = {}) => ok(this.raw.GET('/api/v2/users', { params: { query } }));
  updateUser = (id: string, body: Body<'/api/v2/users/{id}', 'patch'>) => ok(this.raw.PATCH('/api/v2/users/{id}', { params: { path: { id } }, body }));
  listKeys = () => ok(this.raw.GET('/api/v2/users/me/keys'));
  createKey = (body: Body<'/api/v2/users/me/keys', 'post'> = {}) => ok(this.raw.POST('/api/v2/users/me/keys', { body }));
  deleteKey = (id: string) => ok(this.raw.DELETE('/api/v2/users/me/keys/{id}', { params: { path: { id } } }));
  revokeOtherSessions = () => ok(this.raw.DELETE('/api/v2/users/me/sessions'));
  changePassword = (body: Body<'/api/v2/users/me/password', 'put'>) => ok(this.raw.PUT('/api/v2/users/me/password', { body }));

  /** Every user, oldest first (owners), page by page. */
  users(o: { pageSize?: number } = {}): AsyncGenerator<Awaited<ReturnType<ChatdClient['listUsers']>>[number]> {
    return offsetPages((limit, offset) => this.listUsers({ limit, offset }), o.pageSize ?? 200);
  }

  // ------------------------------------------------------------------ Web Push

  vapidKey = () => ok(this.raw.GET('/api/v2/webpush/vapid'));
  subscribePush = (body: Body<'/api/v2/users/me/webpush/subscription', 'post'>) =>
    ok(this.raw.POST('/api/v2/users/me/webpush/subscription', { body }));
  unsubscribePush = (body: Body<'/api/v2/users/me/webpush/subscription', 'delete'>) =>
    ok(this.raw.DELETE('/api/v2/users/me/webpush/subscription', { body }));
  testPush = () => ok(this.raw.POST('/api/v2/users/me/webpush/test'));
  pushSettings = () => ok(this.raw.GET('/api/v2/users/me/webpush/settings'));
  setPushSettings = (body: Body<'/api/v2/users/me/webpush/settings', 'put'>) => ok(this.raw.PUT('/api/v2/users/me/webpush/settings', { body }));

  // ------------------------------------------------------------------ providers, model configs, settings (owners)

  listProviders = () => ok(this.raw.GET('/api/v2/chats/providers'));
  createProvider = (body: Body<'/api/v2/chats/providers', 'post'>) => ok(this.raw.POST('/api/v2/chats/providers', { body }));
  updateProvider = (id: string, body: Body<'/api/v2/chats/providers/{id}', 'patch'>) =>
    ok(this.raw.PATCH('/api/v2/chats/providers/{id}', { params: { path: { id } }, body }));
  deleteProvider = (id: string) => ok(this.raw.DELETE('/api/v2/chats/providers/{id}', { params: { path: { id } } }));
  listModelConfigs = () => ok(this.raw.GET('/api/v2/chats/model-configs'));
  createModelConfig = (body: Body<'/api/v2/chats/model-configs', 'post'>) => ok(this.raw.POST('/api/v2/chats/model-configs', { body }));
  updateModelConfig = (id: string, body: Body<'/api/v2/chats/model-configs/{id}', 'patch'>) =>
    ok(this.raw.PATCH('/api/v2/chats/model-configs/{id}', { params: { path: { id } }, body }));
  deleteModelConfig = (id: string) => ok(this.raw.DELETE('/api/v2/chats/model-configs/{id}', { params: { path: { id } } }));
  /** The models any user may chat with. */
  listModels = () => ok(this.raw.GET('/api/v2/chats/models'));
  retentionDays = () => ok(this.raw.GET('/api/v2/chats/config/retention-days'));
  setRetentionDays = (body: Body<'/api/v2/chats/config/retention-days', 'put'>) => ok(this.raw.PUT('/api/v2/chats/config/retention-days', { body }));
  autoArchiveDays = () => ok(this.raw.GET('/api/v2/chats/config/auto-archive-days'));
  setAutoArchiveDays = (body: Body<'/api/v2/chats/config/auto-archive-days', 'put'>) =>
    ok(this.raw.PUT('/api/v2/chats/config/auto-archive-days', { body }));
  systemPrompt = () => ok(this.raw.GET('/api/v2/chats/config/system-prompt'));
  setSystemPrompt = (body: Body<'/api/v2/chats/config/system-prompt', 'put'>) => ok(this.raw.PUT('/api/v2/chats/config/system-prompt', { body }));

  // ------------------------------------------------------------------ usage and spend limits

  /** Your usage over UTC days (`group_by` day, model or chat), as JSON (`format=csv`: use `raw`). */
  myUsage = (query: Omit<Query<'/api/v2/users/me/usage', 'get'>, 'format'> = {}) =>
    ok(this.raw.GET('/api/v2/users/me/usage', { params: { query: { ...query, format: 'json' } } }));
  /** Everyone's usage (owners), by user too. */
  usage = (query: Omit<Query<'/api/v2/usage', 'get'>, 'format'> = {}) =>
    ok(this.raw.GET('/api/v2/usage', { params: { query: { ...query, format: 'json' } } }));
  /** Your spend limit and what you spent in the current period. */
  mySpendLimit = () => ok(this.raw.GET('/api/v2/users/me/usage/limit'));
  /** The deployment's default spend limit per user (owners). */
  spendLimit = () => ok(this.raw.GET('/api/v2/chats/config/spend-limit'));
  setSpendLimit = (body: Body<'/api/v2/chats/config/spend-limit', 'put'>) => ok(this.raw.PUT('/api/v2/chats/config/spend-limit', { body }));
  /** One user's limit and spend (owners). */
  userSpendLimit = (id: string) => ok(this.raw.GET('/api/v2/users/{id}/spend-limit', { params: { path: { id } } }));
  /** Sets one user's own limit (owners); `amount: null` clears it. */
  setUserSpendLimit = (id: string, body: Body<'/api/v2/users/{id}/spend-limit', 'put'>) =>
    ok(this.raw.PUT('/api/v2/users/{id}/spend-limit', { params: { path: { id } }, body }));

  // ------------------------------------------------------------------ agents

  createAgent = (body: Body<'/api/v2/agents', 'post'>) => ok(this.raw.POST('/api/v2/agents', { body }));
  rotateAgentToken = (id: string) => ok(this.raw.POST('/api/v2/agents/{id}/token', { params: { path: { id } } }));
  deleteAgent = (id: string) => ok(this.raw.DELETE('/api/v2/agents/{id}', { params: { path: { id } } }));
  /** As an agent (its token as `token`): replaces its context resources. */
  pushAgentContext = (body: Body<'/api/v2/agents/me/context', 'put'>) => ok(this.raw.PUT('/api/v2/agents/me/context', { body }));

  // ------------------------------------------------------------------ chats

  /** Starts a chat. Sent with an `Idempotency-Key` (random unless given), so a retry never makes a second chat. */
  createChat = (body: Body<'/api/v2/chats', 'post'>, o: { idempotencyKey?: string } = {}) =>
    ok(this.raw.POST('/api/v2/chats', { body, params: { header: { 'idempotency-key': key(o.idempotencyKey) } } }));
  listChats = (query: Query<'/api/v2/chats', 'get'> = {}) => ok(this.raw.GET('/api/v2/chats', { params: { query } }));
  getChat = (id: string) => ok(this.raw.GET('/api/v2/chats/{id}', { params: { path: { id } } }));
  updateChat = (id: string, body: Body<'/api/v2/chats/{id}', 'patch'>) => ok(this.raw.PATCH('/api/v2/chats/{id}', { params: { path: { id } }, body }));
  deleteChat = (id: string) => ok(this.raw.DELETE('/api/v2/chats/{id}', { params: { path: { id } } }));

  /** Your chats (with `shared: true`, the chats shared with you), most recently active first, page by page; with `q`, only those whose title or messages match. */
  chats(o: { archived?: boolean; shared?: boolean; q?: string; pageSize?: number } = {}): AsyncGenerator<Chat> {
    const archived = o.archived === true ? 'true' : 'false';
    const shared = o.shared === true ? 'true' : 'false';
    const q = o.q === undefined ? {} : { q: o.q };
    return offsetPages((limit, offset) => this.listChats({ ...q, archived, shared, limit, offset }), o.pageSize ?? 200);
  }

  /**
   * Searches the messages of the chats you can read (web-search syntax: words, `"a phrase"`, `-word`, `or`): best
   * match first, then newest. Each result's `snippet` is HTML-escaped text with matches in `<mark>`.
   */
  searchChats = (query: Query<'/api/v2/chats/search', 'get'>) => ok(this.raw.GET('/api/v2/chats/search', { params: { query } }));

  // ------------------------------------------------------------------ sharing

  /** Who the chat is shared with (its owner). */
  chatAcl = (id: string) => ok(this.raw.GET('/api/v2/chats/{id}/acl', { params: { path: { id } } }));
  /** Shares the chat with users and groups (`viewer`), or stops (`null`). */
  updateChatAcl = (id: string, body: Body<'/api/v2/chats/{id}/acl', 'patch'>) =>
    ok(this.raw.PATCH('/api/v2/chats/{id}/acl', { params: { path: { id } }, body }));
  /** A read-only link to the chat as it is now; its `token` is shown only in this answer. */
  createShareLink = (id: string, body: Body<'/api/v2/chats/{id}/share-links', 'post'> = {}) =>
    ok(this.raw.POST('/api/v2/chats/{id}/share-links', { params: { path: { id } }, body }));
  shareLinks = (id: string) => ok(this.raw.GET('/api/v2/chats/{id}/share-links', { params: { path: { id } } }));
  deleteShareLink = (id: string, linkId: string) =>
    ok(this.raw.DELETE('/api/v2/chats/{id}/share-links/{link_id}', { params: { path: { id, link_id: linkId } } }));
  /** A share link's snapshot (no credential needed). */
  sharedChat = (token: string) => ok(this.raw.GET('/api/v2/shared/{token}', { params: { path: { token } } }));

  // ------------------------------------------------------------------ groups (owners)

  groups = () => ok(this.raw.GET('/api/v2/groups'));
  createGroup = (body: Body<'/api/v2/groups', 'post'>) => ok(this.raw.POST('/api/v2/groups', { body }));
  renameGroup = (id: string, body: Body<'/api/v2/groups/{id}', 'patch'>) => ok(this.raw.PATCH('/api/v2/groups/{id}', { params: { path: { id } }, body }));
  deleteGroup = (id: string) => ok(this.raw.DELETE('/api/v2/groups/{id}', { params: { path: { id } } }));
  groupMembers = (id: string) => ok(this.raw.GET('/api/v2/groups/{id}/members', { params: { path: { id } } }));
  addGroupMember = (id: string, userId: string) =>
    ok(this.raw.PUT('/api/v2/groups/{id}/members/{user_id}', { params: { path: { id, user_id: userId } } }));
  removeGroupMember = (id: string, userId: string) =>
    ok(this.raw.DELETE('/api/v2/groups/{id}/members/{user_id}', { params: { path: { id, user_id: userId } } }));

  // ------------------------------------------------------------------ single sign-on and the audit log

  /** How one may sign in here (no credential needed). */
  authMethods = () => ok(this.raw.GET('/api/v2/auth/methods'));
  oidcConfig = () => ok(this.raw.GET('/api/v2/auth/oidc'));
  setOidcConfig = (body: Body<'/api/v2/auth/oidc', 'put'>) => ok(this.raw.PUT('/api/v2/auth/oidc', { body }));
  /** Runs discovery against the saved settings and says what is wrong. */
  testOidc = () => ok(this.raw.POST('/api/v2/auth/oidc/test'));
  /** The audit log as JSON (owners); for CSV, open `/api/v2/audit?format=csv` (a download). */
  auditEvents = async (query: Omit<Query<'/api/v2/audit', 'get'>, 'format'> = {}) => {
    const r = await ok(this.raw.GET('/api/v2/audit', { params: { query: { ...query, format: 'json' } } }));
    if (typeof r === 'string') throw new Error('the audit log answered CSV to a JSON request');
    return r;
  };

  listMessages = (id: string, query: Query<'/api/v2/chats/{id}/messages', 'get'> = {}) =>
    ok(this.raw.GET('/api/v2/chats/{id}/messages', { params: { path: { id }, query } }));

  /** The page of live messages around a message (e.g. a search result): the older half of `limit` before it, then it and newer ones. */
  messagesAround = async (chatId: string, messageId: number, limit = 50): Promise<Message[]> =>
    (await this.listMessages(chatId, { around: messageId, limit })).messages;

  /** A chat's live messages in id order, after `afterId` (default: all), page by page (`after_id` paging). */
  async *messages(chatId: string, o: { afterId?: number; pageSize?: number } = {}): AsyncGenerator<Message> {
    const limit = o.pageSize ?? 200;
    for (let after = o.afterId ?? 0; ; ) {
      const { messages } = await this.listMessages(chatId, { after_id: after, limit });
      yield* messages;
      const last = messages.at(-1);
      if (!last || messages.length < limit) return;
      after = last.id;
    }
  }

  /**
   * Sends a message: `{message}` when its turn started (201), `{queued_message}` when it waits behind a busy chat
   * (202). Sent with an `Idempotency-Key` (random unless given), so a retry never stores it twice.
   */
  sendMessage = (id: string, body: Body<'/api/v2/chats/{id}/messages', 'post'>, o: { idempotencyKey?: string } = {}) =>
    ok(this.raw.POST('/api/v2/chats/{id}/messages', { params: { path: { id }, header: { 'idempotency-key': key(o.idempotencyKey) } }, body }));
  editMessage = (id: string, messageId: number, body: Body<'/api/v2/chats/{id}/messages/{message_id}', 'patch'>) =>
    ok(this.raw.PATCH('/api/v2/chats/{id}/messages/{message_id}', { params: { path: { id, message_id: messageId } }, body }));
  interrupt = (id: string) => ok(this.raw.POST('/api/v2/chats/{id}/interrupt', { params: { path: { id } } }));
  queue = (id: string) => ok(this.raw.GET('/api/v2/chats/{id}/queue', { params: { path: { id } } }));
  deleteQueued = (id: string, qid: string) => ok(this.raw.DELETE('/api/v2/chats/{id}/queue/{qid}', { params: { path: { id, qid } } }));
  promoteQueued = (id: string, qid: string) => ok(this.raw.POST('/api/v2/chats/{id}/queue/{qid}/promote', { params: { path: { id, qid } } }));
  context = (id: string) => ok(this.raw.GET('/api/v2/chats/{id}/context', { params: { path: { id } } }));
  repinContext = (id: string) => ok(this.raw.PUT('/api/v2/chats/{id}/context', { params: { path: { id } } }));
  // ------------------------------------------------------------------ files

  /**
   * Uploads a file (at most 10 MiB; png, jpeg, gif, webp, pdf, plain text, markdown, csv, json): its bytes are the
   * body, `mediaType` its Content-Type. Attach it with a part `{type: "file", file_id: file.id}`.
   */
  async uploadFile(data: Blob | Uint8Array | ArrayBuffer, o: { name: string; mediaType: string }): Promise<ChatFile> {
    const url = `${this.base()}/api/v2/chats/files?name=${encodeURIComponent(o.name)}`;
    const body = data instanceof Uint8Array ? new Blob([new Uint8Array(data)]) : data;
    const res = await this.send(new Request(url, { method: 'POST', body, headers: { ...this.credentials(), 'content-type': o.mediaType } }));
    const file: unknown = await res.json();
    return file as ChatFile;
  }

  /** A file's bytes (yours, or used by a chat you can read), as a Response: `.blob()`, `.arrayBuffer()`, `.body`. */
  async downloadFile(id: string): Promise<Response> {
    return await this.send(new Request(`${this.base()}/api/v2/chats/files/${encodeURIComponent(id)}`, { headers: this.credentials() }));
  }

  /** The files used by a chat's messages. */
  chatFiles = (id: string) => ok(this.raw.GET('/api/v2/chats/{id}/files', { params: { path: { id } } }));

  private base(): string {
    return this.options.baseUrl.replace(/\/+$/, '');
  }

  /** A request outside openapi-fetch (binary bodies): its response when 2xx, else the ChatdError it stands for. */
  private async send(req: Request): Promise<Response> {
    let res: Response;
    try {
      res = await (this.options.fetch ?? ((r: Request) => globalThis.fetch(r)))(req);
    } catch (e) {
      throw ChatdError.network(e);
    }
    if (res.ok) return res;
    throw ChatdError.fromBody(res.status, await res.json().catch(() => null), res.headers);
  }


  // ------------------------------------------------------------------ conversation tools

  /** A new chat of yours holding copies of the chat's live messages up to `message_id` (`chat.forked_from` says where). */
  forkChat = (id: string, body: Body<'/api/v2/chats/{id}/fork', 'post'>) => ok(this.raw.POST('/api/v2/chats/{id}/fork', { params: { path: { id } }, body }));
  /** The answer after the last user message goes and a new one runs (on `model_config_id` when given); 409 while a turn runs. */
  regenerate = (id: string, body: NonNullable<Body<'/api/v2/chats/{id}/regenerate', 'post'>> = {}) =>
    ok(this.raw.POST('/api/v2/chats/{id}/regenerate', { params: { path: { id } }, body }));
  /** The chat in the JSON export format (what `importChat` takes). For Markdown, `exportMarkdown`. */
  async exportChat(id: string): Promise<ChatExport> {
    const r = await ok(this.raw.GET('/api/v2/chats/{id}/export', { params: { path: { id }, query: { format: 'json' } } }));
    if (typeof r === 'string') throw new TypeError('the JSON export came back as text');
    return r;
  }
  /** The chat as Markdown (roles as headings, code kept, tool calls summarised). */
  async exportMarkdown(id: string): Promise<string> {
    const r = await this.raw.GET('/api/v2/chats/{id}/export', { params: { path: { id }, query: { format: 'markdown' } }, parseAs: 'text' });
    return await ok(Promise.resolve(r));
  }
  /** A new chat of yours from a JSON export, with the same messages (no turn runs). */
  importChat = (body: Body<'/api/v2/chats/import', 'post'>) => ok(this.raw.POST('/api/v2/chats/import', { body }));
  /** The model config that writes titles (owners); null: each chat's own model. */
  titleModel = () => ok(this.raw.GET('/api/v2/chats/config/title-model'));
  setTitleModel = (body: Body<'/api/v2/chats/config/title-model', 'put'>) => ok(this.raw.PUT('/api/v2/chats/config/title-model', { body }));
  // ------------------------------------------------------------------ tools

  /** The tools the chat's turns see (`<server>__<tool>`), with their approval modes, and the servers left out. */
  chatTools = (id: string) => ok(this.raw.GET('/api/v2/chats/{id}/tools', { params: { path: { id } } }));
  /** Approves or denies a tool call waiting for approval (status `requires_action`); the chat after it. */
  decideToolCall = (id: string, toolCallId: string, body: Body<'/api/v2/chats/{id}/tool-calls/{tool_call_id}', 'post'>) =>
    ok(this.raw.POST('/api/v2/chats/{id}/tool-calls/{tool_call_id}', { params: { path: { id, tool_call_id: toolCallId } }, body }));
  /** The deployment's MCP servers (owners); header values are never returned (`has_headers`). */
  listMcpServers = () => ok(this.raw.GET('/api/v2/chats/mcp-servers'));
  createMcpServer = (body: Body<'/api/v2/chats/mcp-servers', 'post'>) => ok(this.raw.POST('/api/v2/chats/mcp-servers', { body }));
  updateMcpServer = (id: string, body: Body<'/api/v2/chats/mcp-servers/{id}', 'patch'>) =>
    ok(this.raw.PATCH('/api/v2/chats/mcp-servers/{id}', { params: { path: { id } }, body }));
  deleteMcpServer = (id: string) => ok(this.raw.DELETE('/api/v2/chats/mcp-servers/{id}', { params: { path: { id } } }));
  /** The hosts an agent's pinned MCP servers may be on (owners); empty: none. */
  mcpAllowedHosts = () => ok(this.raw.GET('/api/v2/chats/config/mcp-allowed-hosts'));
  setMcpAllowedHosts = (body: Body<'/api/v2/chats/config/mcp-allowed-hosts', 'put'>) => ok(this.raw.PUT('/api/v2/chats/config/mcp-allowed-hosts', { body }));

  /** A chat's stream counters (owners). */
  streamStats = (id: string) => ok(this.raw.GET('/api/v2/chats/{id}/stream-stats', { params: { path: { id } } }));

  /** A single-use, 60 s ticket that opens the chat's stream without a token (`?ticket=`), checked as it arrives. */
  async streamTicket(id: string): Promise<{ ticket: string; expires_at: string }> {
    const body = await ok(this.raw.POST('/api/v2/chats/{id}/stream-ticket', { params: { path: { id } } }));
    const ticket = parseTicket(body);
    if (!ticket) throw new ChatdError(0, 'The server answered a stream ticket request with something else.');
    return ticket;
  }

  /** The chat's stream: it connects now, and reconnects and resumes by itself until `close()`. */
  stream(chatId: string, options: StreamOptions = {}): ChatStream {
    const transport = this.options.transport ?? (this.options.WebSocket ? nodeTransport(this.options.WebSocket) : browserTransport());
    const base = this.options.baseUrl.replace(/\/+$/, '');
    return new ChatStream(
      chatId,
      {
        transport,
        headers: this.credentials(),
        url: (afterId, ticket) => {
          const q = new URLSearchParams({ after_id: String(afterId) });
          if (ticket !== null) q.set('ticket', ticket);
          return `${base}/api/v2/chats/${encodeURIComponent(chatId)}/stream?${q.toString()}`;
        },
        ticket: async () => (await this.streamTicket(chatId)).ticket,
      },
      options,
    );
  }

  /** `GET /healthz`: `{status: "ok"}`, or a ChatdError (503) when Postgres is unreachable. */
  health = () => ok(this.raw.GET('/healthz'));

  private credentials(): Record<string, string> {
    const h: Record<string, string> = {};
    if (this.options.token !== undefined) h.authorization = `Bearer ${this.options.token}`;
    if (this.options.cookie !== undefined) h.cookie = `session_token=${this.options.cookie}`;
    return h;
  }
}

/** Pages of an offset-paged list, until one comes back short. */
async function* offsetPages<T>(page: (limit: number, offset: number) => Promise<T[]>, limit: number): AsyncGenerator<T> {
  for (let offset = 0; ; offset += limit) {
    const items = await page(limit, offset);
    yield* items;
    if (items.length < limit) return;
  }
}

/** A client of one deployment. */
export function createClient(options: ClientOptions): ChatdClient {
  return new ChatdClient(options);
}
