/**
 * Where the server may send requests on a user's or an admin's behalf (Web Push endpoints, MCP servers): the guards
 * against server-side request forgery, in one place. A URL must be https on the default port, without credentials,
 * naming a host (never an IP address) that is not an internal name, and, when the caller gives an allowlist, on one of
 * its hosts. A development setting admits any http(s) URL instead (loopback servers, private hosts).
 *
 * Names that resolve to private addresses cannot be told apart here (no DNS in a Worker); in production Workers cannot
 * reach private networks anyway, and the allowlists keep the set of hosts known.
 */

/** Whether a (lower-case, WHATWG-parsed) host name matches an allowlist entry (`host` or `*.domain`). */
export function hostAllowed(host: string, allowed: readonly string[]): boolean {
  return allowed.some((entry) => {
    const e = entry.trim().toLowerCase();
    if (e.startsWith('*.')) return host.length > e.length - 1 && host.endsWith(e.slice(1));
    return e !== '' && host === e;
  });
}

/**
 * An IP literal as the URL parser leaves it: IPv4 in dotted-quad form (it rewrites `0x7f.1`, `2130706433` and
 * the like to that) or IPv6 in brackets.
 */
export const isIpLiteral = (host: string): boolean => /^\d{1,3}(\.\d{1,3}){3}$/.test(host) || host.startsWith('[');

/** Names that only mean something inside a network: a single label, or a reserved internal suffix. */
const INTERNAL_SUFFIXES = ['.localhost', '.local', '.internal', '.intranet', '.lan', '.home.arpa', '.corp'];
const isInternalName = (host: string): boolean =>
  !host.includes('.') || INTERNAL_SUFFIXES.some((s) => host.endsWith(s)) || host.endsWith('.');

export interface UrlPolicy {
  /** Development only: any http(s) URL, private hosts and IP addresses included. */
  allowInsecure: boolean;
  /** The hosts accepted (`host` or `*.domain`); null accepts any public host name. */
  allowedHosts: readonly string[] | null;
}

/** Why a URL the server would fetch is refused, or null when it is acceptable. Never throws, whatever the string. */
export function outboundUrlProblem(raw: string, policy: UrlPolicy): string | null {
  const url = URL.parse(raw);
  if (!url) return 'must be a URL';
  if (policy.allowInsecure) return url.protocol === 'https:' || url.protocol === 'http:' ? null : 'must be an http(s) URL';
  if (url.protocol !== 'https:') return 'must be an https URL';
  if (url.username !== '' || url.password !== '') return 'must not contain credentials';
  if (url.port !== '') return 'must use the default https port';
  const host = url.hostname.toLowerCase();
  if (isIpLiteral(host)) return 'must name a host, not an IP address';
  if (policy.allowedHosts === null) return isInternalName(host) ? 'must name a public host' : null;
  return hostAllowed(host, policy.allowedHosts) ? null : 'must be on a host this deployment accepts';
}
