/** Shared pieces for route modules: the router factory with our validation hook, and error schemas. */
import { OpenAPIHono, z } from '@hono/zod-openapi';
import type { ZodError } from 'zod';
import type { AppEnv } from '../env';
import { ApiError, type Validation } from '../core/errors';

type Issue = ZodError['issues'][number];

/**
 * One issue as validations. A union whose other branches failed only on the value's type (a string | list
 * field given a list) reports the issues of the branch that fits, not zod's bare "Invalid input".
 */
function validationsOfIssue(issue: Issue, prefix: PropertyKey[]): Validation[] {
  const path = [...prefix, ...issue.path];
  if (issue.code === 'invalid_union') {
    const wrongType = (errs: Issue[]) => errs.length === 1 && errs[0]?.code === 'invalid_type' && errs[0].path.length === 0;
    const fitting = issue.errors.filter((errs) => !wrongType(errs));
    if (fitting.length === 1 && fitting[0]) return fitting[0].flatMap((i) => validationsOfIssue(i, path));
  }
  return [{ field: path.length ? path.map(String).join('.') : '(body)', detail: issue.message }];
}

/** zod issues as the API's `validations` list. */
export function validationsOf(error: ZodError): Validation[] {
  return error.issues.flatMap((i) => validationsOfIssue(i, []));
}

export function validationError(error: ZodError): ApiError {
  return new ApiError(400, 'Validation failed.', undefined, validationsOf(error));
}

/** A router for one resource; every request part it validates fails as 400 with `validations`. */
export function router(): OpenAPIHono<AppEnv> {
  return new OpenAPIHono<AppEnv>({
    defaultHook: (result) => {
      if (!result.success) throw validationError(result.error);
    },
  });
}

export const ErrorSchema = z
  .object({
    message: z.string(),
    detail: z.string().optional(),
    validations: z.array(z.object({ field: z.string(), detail: z.string() })).optional(),
  })
  .openapi('Error');

const err = (description: string) => ({ description, content: { 'application/json': { schema: ErrorSchema } } });

/** Error responses, for route definitions. */
export const errors = {
  400: err('Invalid input'),
  401: err('Not signed in, or the token is invalid, expired or revoked'),
  402: err("The user's spend limit is reached for this period; detail is when it resets (RFC 3339). Nothing was stored"),
  403: err('Signed in but not allowed'),
  404: err('Not found, or not yours'),
  409: err('Conflicts with the current state'),
  413: err('The request body is too large'),
  429: err('Too many requests: wait for the number of seconds in Retry-After'),
  503: err('The database is unavailable'),
} as const;

/** `{ [status]: errors[status] }` for the given statuses. */
export function errorResponses<S extends keyof typeof errors>(...statuses: S[]): Pick<typeof errors, S> {
  const out: Partial<Pick<typeof errors, S>> = {};
  for (const s of statuses) out[s] = errors[s];
  return out as Pick<typeof errors, S>;
}

export const jsonBody = <T extends z.ZodType>(schema: T, required = true) => ({
  required,
  content: { 'application/json': { schema } },
});

export const jsonResponse = <T extends z.ZodType>(schema: T, description: string) => ({
  description,
  content: { 'application/json': { schema } },
});

export const UuidParam = (name: string) =>
  z.uuid({ message: `${name} must be a UUID` }).openapi({ param: { name, in: 'path' } });

/** Path parameters of a route on one object: `{id}`, a UUID. */
export const IdParams = z.object({ id: UuidParam('id') });

/** A message id in a query (`after_id`, `before_id`): a non-negative integer. */
export const IdQuery = z
  .string()
  .regex(/^(0|[1-9][0-9]{0,17})$/, { message: 'must be a non-negative integer' })
  .transform(Number)
  .openapi({ type: 'integer', minimum: 0 });
