import { describe, expect, it } from 'vitest';
import {
  cookieValueOf, decideAccess, forwardingHeaderIn, isLocalHostHeader, isLoopback, presentsCredentials, type AccessFacts,
} from '../../server/admin/access.ts';
import { adminPathOf } from '../../server/admin/admin.ts';
import { crossSiteReason, type OriginFacts } from '../../server/admin/cross-site.ts';
import { bucketOf, newHistogram, quantilesOf, upperBoundOf } from '../../server/admin/latency-histogram.ts';
import { SignInThrottle, throttleKeyOf } from '../../server/admin/sign-in-throttle.ts';
import { adminExposureWarning } from '../../server/admin/start-warning.ts';

const TOKEN = 'correct-horse-battery-staple';
const local: AccessFacts = { peerAddress: '127.0.0.1', hosts: ['127.0.0.1:8000'], authorization: undefined, cookie: undefined, forwardingHeader: undefined };
const remote: AccessFacts = { ...local, peerAddress: '203.0.113.7', hosts: ['example.com'] };
const proxied: AccessFacts = { ...local, forwardingHeader: 'x-forwarded-for' };

describe('decideAccess: who may see the admin', () => {
  it.each<[string, AccessFacts, string | undefined, boolean]>([
    // Without a token: loopback clients the server can be sure of, and nobody else.
    ['loopback v4', local, undefined, true],
    ['loopback, another 127/8 address', { ...local, peerAddress: '127.0.0.2' }, undefined, true],
    ['loopback v6', { ...local, peerAddress: '::1', hosts: ['[::1]:8000'] }, undefined, true],
    ['loopback v4-mapped', { ...local, peerAddress: '::ffff:127.0.0.1', hosts: ['localhost:8000'] }, undefined, true],
    ['loopback without Host (HTTP/1.0)', { ...local, hosts: [] }, undefined, true],
    ['loopback, Host localhost', { ...local, hosts: ['localhost'] }, undefined, true],
    ['loopback, Host app.localhost', { ...local, hosts: ['app.localhost:8000'] }, undefined, true],
    ['loopback, DNS-rebound Host', { ...local, hosts: ['evil.example:8000'] }, undefined, false],
    ['loopback, Host [::1]evil.com', { ...local, hosts: ['[::1]evil.com'] }, undefined, false],
    ['loopback, two Host headers', { ...local, hosts: ['localhost', 'evil.example'] }, undefined, false],
    ['loopback, an empty Host', { ...local, hosts: [''] }, undefined, false],
    ['loopback through a proxy (X-Forwarded-For)', proxied, undefined, false],
    ['loopback through a proxy (X-Forwarded-Proto only)', { ...local, forwardingHeader: 'x-forwarded-proto' }, undefined, false],
    ['loopback through a proxy (Via)', { ...local, forwardingHeader: 'via' }, undefined, false],
    ['remote', remote, undefined, false],
    ['remote with a forged Host: localhost', { ...remote, hosts: ['localhost'] }, undefined, false],
    ['remote, v4-mapped non-loopback', { ...remote, peerAddress: '::ffff:10.0.0.1' }, undefined, false],
    ['remote with a token but none configured', { ...remote, authorization: `Bearer ${TOKEN}` }, undefined, false],
    // With a token: everyone needs it, loopback too (behind a local proxy everyone is loopback).
    ['loopback without the token, one configured', local, TOKEN, false],
    ['loopback with the Bearer token', { ...local, authorization: `Bearer ${TOKEN}` }, TOKEN, true],
    ['remote with a forged Host: 127.0.0.1', { ...remote, hosts: ['127.0.0.1:8000'] }, TOKEN, false],
    ['remote with the Bearer token', { ...remote, authorization: `Bearer ${TOKEN}` }, TOKEN, true],
    ['remote with a lower-case bearer', { ...remote, authorization: `bearer ${TOKEN}` }, TOKEN, true],
    ['remote with a wrong token', { ...remote, authorization: 'Bearer nope-nope-nope-nope' }, TOKEN, false],
    ['remote with the raw token as Basic', { ...remote, authorization: `Basic ${TOKEN}` }, TOKEN, false],
    ['remote with the sign-in cookie', { ...remote, cookie: `a=b; interpool_admin=${cookieValueOf(TOKEN)}` }, TOKEN, true],
    ['remote with the raw token as cookie', { ...remote, cookie: `interpool_admin=${TOKEN}` }, TOKEN, false],
    ['proxied with the Bearer token', { ...proxied, authorization: `Bearer ${TOKEN}` }, TOKEN, true],
  ])('%s', (_name, facts, token, allowed) => {
    expect(decideAccess(facts, token).allowed).toBe(allowed);
  });

  it('knows loopback addresses', () => {
    expect(['127.0.0.1', '127.255.0.9', '::1', '::ffff:127.0.0.1'].every(isLoopback)).toBe(true);
    expect(['10.0.0.1', '::ffff:10.0.0.1', '0.0.0.0', '', 'localhost', '128.0.0.1'].some(isLoopback)).toBe(false);
  });

  it('says which requests present credentials (the ones the sign-in throttle counts)', () => {
    expect(presentsCredentials({ ...local, authorization: 'Bearer x' })).toBe(true);
    expect(presentsCredentials({ ...local, cookie: 'a=b; interpool_admin=x' })).toBe(true);
    expect(presentsCredentials({ ...local, cookie: 'other=1', authorization: 'Basic eDp5' })).toBe(false);
    expect(presentsCredentials(local)).toBe(false);
  });
});

describe('isLocalHostHeader: a Host a DNS-rebound page cannot send', () => {
  it.each<[string, boolean]>([
    ['localhost', true], ['LOCALHOST', true], ['LOCALHOST:80', true], ['localhost.', true], ['localhost:8000', true],
    ['app.localhost', true], ['a.b.localhost:9', true],
    ['127.0.0.1', true], ['127.0.0.1:8000', true], ['10.1.2.3:9', true],
    ['[::1]', true], ['[::1]:8000', true], ['[0:0:0:0:0:0:0:1]:80', true],
    ['[::1]evil.com', false], ['[::1]:80evil', false], ['[::1]:80:80', false], ['[::1]]', false], ['[::1', false],
    ['[evil.com]', false], ['[127.0.0.1]', false], ['::1', false], ['[::1]:', true],
    ['127.0.0.1.evil.com', false], ['127.0.0.1.nip.io', false], ['127.0.0.1:80evil', false], ['127.0.0.1:', true],
    ['localhost.example.com', false], ['localhost:80:80', false], ['localhost..', false], ['.localhost', false],
    ['evil.com#.localhost', false], ['evil.com/.localhost', false], ['evil@localhost', false], ['a b.localhost', false],
    ['example.com', false], ['evil:8000', false], ['', false], [':80', false], ['localhost:123456', false],
  ])('%j → %s', (host, expected) => {
    expect(isLocalHostHeader(host)).toBe(expected);
  });
});

describe('forwardingHeaderIn: any sign that a proxy passed the request on', () => {
  it.each<[string[], string | undefined]>([
    [['Host', 'localhost', 'Accept', '*/*'], undefined],
    [['Host', 'localhost', 'X-Forwarded-For', '203.0.113.9'], 'x-forwarded-for'],
    [['X-Forwarded-Proto', 'https'], 'x-forwarded-proto'],
    [['x-forwarded-host', 'example.com'], 'x-forwarded-host'],
    [['X-Forwarded-Port', '443'], 'x-forwarded-port'],
    [['X-Forwarded-Prefix', '/app'], 'x-forwarded-prefix'],
    [['X-Forwarded-Ssl', 'on'], 'x-forwarded-ssl'],
    [['Forwarded', 'for=203.0.113.9'], 'forwarded'],
    [['X-Real-IP', '203.0.113.9'], 'x-real-ip'],
    [['Via', '1.1 nginx'], 'via'],
    [['True-Client-IP', '203.0.113.9'], 'true-client-ip'],
    [['CF-Connecting-IP', '203.0.113.9'], 'cf-connecting-ip'],
    // Present but empty still says a proxy was there.
    [['X-Forwarded-For', ''], 'x-forwarded-for'],
    [['X-Forwarded', 'x'], 'x-forwarded'],
    [['X-Forwardedness', 'x'], undefined],
  ])('%j → %s', (rawHeaders, expected) => {
    expect(forwardingHeaderIn(rawHeaders)).toBe(expected);
  });
});

describe('SignInThrottle: a few wrong tokens per client per minute, then 429', () => {
  const limits = { failures: 5, windowMs: 60_000, clients: 3 };

  it('lets five failures through, then asks the client to wait until its minute is over', () => {
    const throttle = new SignInThrottle(limits);
    const t0 = 1_000_000;
    for (let i = 0; i < 4; i++) {
      expect(throttle.retryAfter('203.0.113.9', t0 + i)).toBe(0);
      expect(throttle.recordFailure('203.0.113.9', t0 + i)).toBe(false);
    }
    expect(throttle.retryAfter('203.0.113.9', t0 + 4)).toBe(0);
    expect(throttle.recordFailure('203.0.113.9', t0 + 4)).toBe(true);
    expect(throttle.retryAfter('203.0.113.9', t0 + 5)).toBe(60);
    expect(throttle.retryAfter('203.0.113.9', t0 + 30_500)).toBe(30);
    expect(throttle.retryAfter('203.0.113.9', t0 + 59_999)).toBe(1);
    expect(throttle.retryAfter('198.51.100.1', t0 + 5)).toBe(0);
    expect(throttle.retryAfter('203.0.113.9', t0 + 60_000)).toBe(0);
    expect(throttle.recordFailure('203.0.113.9', t0 + 60_000)).toBe(false);
  });

  it('keeps at most `clients` entries, dropping expired ones first, then the oldest', () => {
    const throttle = new SignInThrottle(limits);
    throttle.recordFailure('a', 0);
    throttle.recordFailure('b', 10);
    throttle.recordFailure('c', 20);
    expect(throttle.size).toBe(3);
    throttle.recordFailure('d', 30);
    expect(throttle.size).toBe(3);
    throttle.recordFailure('e', 60_015);
    expect(throttle.size).toBe(3);
    for (let i = 0; i < 10_000; i++) throttle.recordFailure(`spray-${i}`, 70_000);
    expect(throttle.size).toBe(3);
  });

  it('counts an IPv6 client by its /64 (one host has a whole /64 to rotate through)', () => {
    expect(throttleKeyOf('203.0.113.9')).toBe('203.0.113.9');
    expect(throttleKeyOf('::ffff:203.0.113.9')).toBe('203.0.113.9');
    expect(throttleKeyOf('2001:db8:1:2:aaaa::1')).toBe('2001:db8:1:2::/64');
    expect(throttleKeyOf('2001:0db8:0001:0002:ffff:ffff:ffff:ffff')).toBe('2001:db8:1:2::/64');
    expect(throttleKeyOf('2001:db8::1')).toBe('2001:db8:0:0::/64');
    expect(throttleKeyOf('::1')).toBe('0:0:0:0::/64');
    expect(throttleKeyOf('unknown')).toBe('unknown');
  });
});

describe('adminExposureWarning: the start-up warning for an admin a local proxy would open', () => {
  const base = { adminBind: undefined, adminToken: undefined, forwardedAllowIps: ['127.0.0.1', '::1'], adminPath: '/_interpool' };
  it.each<[string, typeof base | Record<string, unknown>, boolean]>([
    ['public listener, no token, a trusted proxy (the default)', base, true],
    ['a proxy elsewhere', { ...base, forwardedAllowIps: ['10.0.0.5'] }, true],
    ['no proxy trusted', { ...base, forwardedAllowIps: [] }, false],
    ['a token', { ...base, adminToken: TOKEN }, false],
    ['--admin-bind', { ...base, adminBind: { host: '127.0.0.1', port: 9100 } }, false],
  ])('%s → %s', (_name, config, warns) => {
    const warning = adminExposureWarning(config as Parameters<typeof adminExposureWarning>[0]);
    expect(warning !== undefined).toBe(warns);
    if (warning) expect(warning).toMatch(/--admin-bind.*INTERPOOL_ADMIN_TOKEN/);
  });
});

describe('crossSiteReason: admin actions are refused when they may come from another site', () => {
  const same: OriginFacts = { actionHeader: '1', secFetchSite: 'same-origin', origin: 'http://127.0.0.1:8000', host: '127.0.0.1:8000', scheme: 'http' };
  it.each<[string, OriginFacts, boolean]>([
    ['the dashboard\'s own fetch', same, true],
    ['curl with the header', { actionHeader: '1', secFetchSite: undefined, origin: undefined, host: 'localhost', scheme: 'http' }, true],
    ['no header (an HTML form)', { ...same, actionHeader: undefined }, false],
    ['cross-site fetch', { ...same, secFetchSite: 'cross-site' }, false],
    ['same-site but another origin', { ...same, secFetchSite: 'same-site' }, false],
    ['another Origin', { ...same, secFetchSite: undefined, origin: 'http://evil.example' }, false],
    ['Origin null (sandboxed frame)', { ...same, secFetchSite: undefined, origin: 'null' }, false],
    ['https origin for an http request', { ...same, origin: 'https://127.0.0.1:8000' }, false],
  ])('%s', (_name, facts, allowed) => {
    expect(crossSiteReason(facts, { requireHeader: true }) === undefined).toBe(allowed);
  });

  it('the sign-in form needs no header, only the same origin', () => {
    expect(crossSiteReason({ ...same, actionHeader: undefined }, { requireHeader: false })).toBeUndefined();
    expect(crossSiteReason({ ...same, actionHeader: undefined, secFetchSite: 'cross-site' }, { requireHeader: false })).toMatch(/Sec-Fetch-Site/);
  });
});

describe('adminPathOf: which request targets are the admin\'s paths', () => {
  it.each<[string, string | undefined]>([
    ['/admin', '/admin'], ['/admin/', '/admin/'], ['/admin/api/stats?history=1', '/admin/api/stats'], ['/metrics', '/metrics'], ['/metrics?x', '/metrics'],
    ['/administrator', undefined], ['/', undefined], ['/api/admin', undefined], ['/metrics/x', undefined], ['/%61dmin', undefined],
    ['/admin/%ff', undefined], ['/admin/a b', undefined],
  ])('%s → %s', (target, expected) => {
    expect(adminPathOf(target, '/admin')).toBe(expected);
  });
});

describe('latency histogram', () => {
  it('reads percentiles within one bucket (9 %) of the truth', () => {
    const histogram = newHistogram();
    for (let ms = 1; ms <= 100; ms++) histogram[bucketOf(ms)]!++;
    const [p50, p95, p99] = quantilesOf(histogram, [0.5, 0.95, 0.99]);
    expect(p50! / 50).toBeGreaterThanOrEqual(1);
    expect(p50! / 50).toBeLessThan(1.1);
    expect(p95! / 95).toBeLessThan(1.1);
    expect(p99! / 99).toBeLessThan(1.1);
  });

  it('is empty without samples, and clamps the extremes', () => {
    expect(quantilesOf(newHistogram(), [0.5])).toEqual([null]);
    expect(bucketOf(0)).toBe(0);
    expect(upperBoundOf(bucketOf(1e9))).toBeGreaterThan(600_000);
  });
});
