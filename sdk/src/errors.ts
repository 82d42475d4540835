/** The one error the SDK throws: an HTTP error body, a refused or lost stream, or a request that got no answer. */
import { parseErrorBody } from './frames.js';
import type { Validation } from './types.js';

export class ChatdError extends Error {
  override readonly name = 'ChatdError';
  constructor(
    /** The HTTP status (a stream's close code maps to one: 4404 → 404, 4401 → 401); 0 when no answer came. */
    readonly status: number,
    message: string,
    readonly detail?: string,
    readonly validations: Validation[] = [],
    options: {
      /** `Retry-After` of a 429, in seconds. */
      retryAfter?: number | undefined;
      /** The stream's close code, when the error is how a stream ended. */
      closeCode?: number | undefined;
      cause?: unknown;
    } = {},
  ) {
    super(message, { cause: options.cause });
    this.retryAfter = options.retryAfter;
    this.closeCode = options.closeCode;
  }

  readonly retryAfter: number | undefined;
  readonly closeCode: number | undefined;

  /** An error answer: its status and the API's error body (`{message, detail?, validations?}`), checked. */
  static fromBody(status: number, body: unknown, headers?: Headers): ChatdError {
    const retry = Number(headers?.get('retry-after') ?? NaN);
    const retryAfter = Number.isFinite(retry) ? retry : undefined;
    const parsed = parseErrorBody(body);
    if (!parsed) {
      const text = typeof body === 'string' && body.trim() ? `: ${body.trim().slice(0, 200)}` : '';
      return new ChatdError(status, `The server answered ${status}${text}`, undefined, [], { retryAfter });
    }
    return new ChatdError(status, parsed.message, parsed.detail, parsed.validations ?? [], { retryAfter });
  }

  /** An error answer, read from the response. */
  static async fromResponse(res: Response): Promise<ChatdError> {
    const text = await res.text().catch(() => '');
    let body: unknown = text;
    try {
      body = text ? JSON.parse(text) : null;
    } catch {
      // not JSON: keep the text
    }
    return ChatdError.fromBody(res.status, body, res.headers);
  }

  /** A request that got no answer (network, DNS, a dropped connection). */
  static network(cause: unknown): ChatdError {
    const why = cause instanceof Error ? cause.message : String(cause);
    return new ChatdError(0, `The server could not be reached: ${why}`, undefined, [], { cause });
  }
}
