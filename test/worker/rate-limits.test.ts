/**
 * Per-IP limits (CF-Connecting-IP): login attempts, and failed authentications, in sliding windows of a minute
 * counted by the address's RateLimiter object; past them 429 with a clear message and Retry-After. Each test uses
 * addresses of its own, so no test's count reaches another's.
 */
import { env } from 'cloudflare:workers';
import { describe, expect, it } from 'vitest';
import { rateLimiterName } from '../../functions/lib/rate-limit';
import { call, ErrorBody, makeUser } from './helpers';

/** A random address in the documentation range 2001:db8::/32, one /64 per call. */
const ipv6 = () => {
  const g = () => Math.floor(Math.random() * 0xffff).toString(16);
  return `2001:db8:${g()}:${g()}::${g()}`;
};
const limits: Env = { ...env, LOGIN_RATE_LIMIT: '3', AUTH_FAILURE_RATE_LIMIT: '4' };

function expect429(r: { status: number; body: unknown; headers: Headers }, message: RegExp) {
  expect(r.status).toBe(429);
  expect(ErrorBody.parse(r.body).message).toMatch(message);
  const wait = Number(r.headers.get('retry-after'));
  expect(wait).toBeGreaterThanOrEqual(1);
  expect(wait).toBeLessThanOrEqual(60);
}

describe('login', () => {
  it('allows LOGIN_RATE_LIMIT attempts per address and minute, right or wrong, then 429', async () => {
    const u = await makeUser();
    const ip = ipv6();
    const login = (password: string, from = ip) =>
      call('POST', '/api/v2/users/login', { env: limits, headers: { 'cf-connecting-ip': from }, body: { email: u.user.email, password } });
    expect((await login('wrong password')).status).toBe(401);
    expect((await login(u.password)).status).toBe(201);
    expect((await login('wrong again')).status).toBe(401);
    expect429(await login(u.password), /too many login attempts/i);
    // Another address, and the same /64 counted as one.
    expect((await login(u.password, ipv6())).status).toBe(201);
    expect((await login(u.password, ip.replace(/::[0-9a-f]+$/, '::beef'))).status).toBe(429);
  });
});

describe('failed authentication', () => {
  it('allows AUTH_FAILURE_RATE_LIMIT failures per address and minute, then refuses the address, even with a valid token', async () => {
    const u = await makeUser();
    const ip = ipv6();
    const me = (token: string, from = ip) => call('GET', '/api/v2/users/me', { env: limits, token, headers: { 'cf-connecting-ip': from } });
    for (let i = 0; i < 4; i++) expect((await me(`${crypto.randomUUID().slice(0, 10).replace(/-/g, 'a')}-${'A'.repeat(22)}`)).status).toBe(401);
    // Successful requests are not counted.
    expect((await me(u.token, ipv6())).status).toBe(200);
    expect429(await me(`abcdefghij-${'B'.repeat(22)}`), /too many failed authentications/i);
    expect429(await me(u.token), /too many failed authentications/i);
    expect((await me(u.token, ipv6())).status).toBe(200);
  });

  it('does not count a request that presents no credential: logged-out page loads never lock their address', async () => {
    const u = await makeUser();
    const ip = ipv6();
    const headers = { 'cf-connecting-ip': ip };
    // A logged-out page's first read (no cookie, no header), far past the limit of 4, and an agent call without a token.
    for (let i = 0; i < 10; i++) expect((await call('GET', '/api/v2/users/me', { env: limits, headers })).status).toBe(401);
    for (let i = 0; i < 5; i++) expect((await call('PUT', '/api/v2/agents/me/context', { env: limits, headers, body: { resources: [] } })).status).toBe(401);
    expect((await call('GET', '/api/v2/users/me', { env: limits, token: u.token, headers })).status).toBe(200);
    // A credential that is presented and fails still counts, an empty one too.
    const empty = () => call('GET', '/api/v2/users/me', { env: limits, headers: { ...headers, authorization: 'Bearer ' } });
    for (let i = 0; i < 4; i++) expect((await empty()).status).toBe(401);
    expect429(await empty(), /too many failed authentications/i);
    expect429(await call('GET', '/api/v2/users/me', { env: limits, token: u.token, headers }), /too many failed authentications/i);
  });

  it('counts failed agent authentications too', async () => {
    const ip = ipv6();
    const push = () =>
      call('PUT', '/api/v2/agents/me/context', { env: limits, token: `zzzzzzzzzz-${'C'.repeat(22)}`, headers: { 'cf-connecting-ip': ip }, body: { resources: [] } });
    for (let i = 0; i < 4; i++) expect((await push()).status).toBe(401);
    expect429(await push(), /too many failed authentications/i);
  });

  it('does not limit requests that carry no client address (tools, tests), and names IPv6 clients by /64', async () => {
    for (let i = 0; i < 10; i++) expect((await call('GET', '/api/v2/users/me', { env: limits, token: `abcdefghij-${'D'.repeat(22)}` })).status).toBe(401);
    expect(rateLimiterName('2001:DB8:0:12::1')).toBe('ip-2001:db8:0:12::/64');
    expect(rateLimiterName('2001:db8::1')).toBe('ip-2001:db8:0:0::/64');
    expect(rateLimiterName('::1')).toBe('ip-0:0:0:0::/64');
    expect(rateLimiterName('::1:2:3:4:5:6:7')).toBe('ip-0:1:2:3::/64');
    expect(rateLimiterName('::ffff:192.0.2.1')).toBe('ip-0:0:0:0::/64');
    expect(rateLimiterName('203.0.113.9')).toBe('ip-203.0.113.9');
    for (const bad of ['', 'nope', '999.1.1.1', '1:2:3:4:5:6:7:8:9', '1:2:3', '1::2::3', 'g::1']) expect(rateLimiterName(bad)).toBeNull();
  });
});
