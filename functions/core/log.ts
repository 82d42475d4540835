/**
 * The one log helper: a JSON line per event (Workers Logs indexes its fields), `warn` and `error` to stderr. Fields are
 * plain values chosen by the caller; never pass secrets, connection strings, SQL text or stacks.
 */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

export function log(level: LogLevel, msg: string, fields: Record<string, unknown> = {}): void {
  const line = JSON.stringify({ level, msg, ...fields });
  if (level === 'warn' || level === 'error') console.error(line);
  else console.log(line);
}
