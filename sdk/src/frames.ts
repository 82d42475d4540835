/**
 * What the SDK receives, checked before use: stream frames, error bodies and tickets are parsed with zod schemas built
 * from the OpenAPI document's own JSON Schemas (generated from the server's zod schemas), so no shape is restated.
 */
import { z } from 'zod';
import { schemas } from './generated/api.js';
import type { ErrorBody, StreamEvent, StreamTicket } from './types.js';

type JsonSchema = Exclude<Parameters<typeof z.fromJSONSchema>[0], boolean>;
type Name = keyof typeof schemas.$defs;

// The generated constant is JSON Schema by construction (scripts/sdk-gen.mjs writes the document's components).
const defs = schemas.$defs as unknown as Record<string, JsonSchema>;
const built = new Map<Name, z.ZodType>();
function parser(name: Name): z.ZodType {
  let p = built.get(name);
  if (!p) {
    p = z.fromJSONSchema({ $ref: `#/$defs/${name}`, $defs: defs });
    built.set(name, p);
  }
  return p;
}

/** The event types this SDK knows; events of other types (added to the server later) are skipped. */
export const KNOWN_EVENTS: ReadonlySet<string> = new Set(Object.keys(schemas.$defs.StreamEvent.discriminator.mapping));

export type Frame =
  | { kind: 'pong' }
  | { kind: 'events'; events: StreamEvent[]; skipped: number }
  | { kind: 'invalid'; reason: string };

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** A server frame: a JSON array of events, or the pong that answers a ping. */
export function parseFrame(data: unknown): Frame {
  if (typeof data !== 'string') return { kind: 'invalid', reason: 'a frame that is not text' };
  let json: unknown;
  try {
    json = JSON.parse(data);
  } catch {
    return { kind: 'invalid', reason: 'a frame that is not JSON' };
  }
  if (!Array.isArray(json)) {
    return parser('StreamPong').safeParse(json).success ? { kind: 'pong' } : { kind: 'invalid', reason: 'a frame that is neither events nor a pong' };
  }
  const events: StreamEvent[] = [];
  let skipped = 0;
  for (const e of json) {
    if (isRecord(e) && typeof e.type === 'string' && !KNOWN_EVENTS.has(e.type)) {
      skipped += 1;
      continue;
    }
    const r = parser('StreamEvent').safeParse(e);
    if (!r.success) {
      const issue = r.error.issues[0];
      return { kind: 'invalid', reason: `an event that does not match its schema (${issue ? `${issue.path.join('.')}: ${issue.message}` : 'unknown'})` };
    }
    // Checked against the schema the StreamEvent type is generated from.
    events.push(r.data as StreamEvent);
  }
  return { kind: 'events', events, skipped };
}

/** The API's error body, or null when the body is not one. */
export function parseErrorBody(body: unknown): ErrorBody | null {
  const r = parser('Error').safeParse(body);
  return r.success ? (r.data as ErrorBody) : null;
}

/** A stream ticket, or null. */
export function parseTicket(body: unknown): StreamTicket | null {
  const r = parser('StreamTicket').safeParse(body);
  return r.success ? (r.data as StreamTicket) : null;
}
