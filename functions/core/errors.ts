import type { ContentfulStatusCode } from 'hono/utils/http-status';

export interface Validation {
  field: string;
  detail: string;
}

/** The one error body every route answers with. */
export interface ErrorBody {
  message: string;
  detail?: string;
  validations?: Validation[];
}

/** An error meant for the client: its message and detail are safe to show. */
export class ApiError extends Error {
  constructor(
    readonly status: ContentfulStatusCode,
    message: string,
    readonly detail?: string,
    readonly validations?: Validation[],
    /** Response headers that go with this error (`Retry-After` on a 429). */
    readonly headers?: Record<string, string>,
  ) {
    super(message);
    this.name = 'ApiError';
  }

  body(): ErrorBody {
    return {
      message: this.message,
      ...(this.detail !== undefined ? { detail: this.detail } : {}),
      ...(this.validations !== undefined ? { validations: this.validations } : {}),
    };
  }
}

export const NOT_FOUND_MESSAGE = 'Resource not found or you do not have access to this resource';

export const notFound = (): ApiError => new ApiError(404, NOT_FOUND_MESSAGE);
export const unauthorized = (detail?: string): ApiError =>
  new ApiError(401, 'You must be signed in to use this route.', detail);
export const forbidden = (): ApiError => new ApiError(403, 'You are not allowed to perform this action.');
export const badRequest = (message: string, validations?: Validation[]): ApiError =>
  new ApiError(400, message, undefined, validations);
export const conflict = (message: string): ApiError => new ApiError(409, message);
export const SPEND_LIMIT_MESSAGE = 'Spend limit reached for this period.';
/** 402: the user's spend limit is reached; `resetsAt` (RFC 3339) is when the period ends. */
export const spendLimitReached = (resetsAt: string): ApiError => new ApiError(402, SPEND_LIMIT_MESSAGE, resetsAt);
/** 429 with `Retry-After` in whole seconds (at least 1). */
export const tooManyRequests = (message: string, retryAfterMs: number): ApiError =>
  new ApiError(429, message, undefined, undefined, { 'retry-after': String(Math.max(1, Math.ceil(retryAfterMs / 1000))) });

/** Postgres cannot be reached or did not answer in time. Answered as 503. */
export class DbUnavailableError extends Error {
  constructor(
    readonly reason: string,
    cause?: unknown,
  ) {
    super(`database unavailable: ${reason}`, { cause });
    this.name = 'DbUnavailableError';
  }
}
