import { describe, expect, it } from 'vitest';
import { cookieValueOf, decideAccess, isLocalHostHeader, isLoopback, type AccessFacts } from '../../server/admin/access.ts';
import { isAdminTarget } from '../../server/admin/admin.ts';
import { crossSiteReason, type OriginFacts } from '../../server/admin/cross-site.ts';
import { bucketOf, newHistogram, quantilesOf, upperBoundOf } from '../../server/admin/latency-histogram.ts';

const TOKEN = 'correct-horse-battery-staple';
const local: AccessFacts = { peerAddress: '127.0.0.1', host: '127.0.0.1:8000', authorization: undefined, cookie: undefined, proxied: false };
const remote: AccessFacts = { ...local, peerAddress: '203.0.113.7', host: 'example.com' };

describe('decideAccess: who may see the admin', () => {
  it.each<[string, AccessFacts, string | undefined, boolean]>([
    ['loopback v4', local, undefined, true],
    ['loopback, another 127/8 address', { ...local, peerAddress: '127.0.0.2' }, undefined, true],
    ['loopback v6', { ...local, peerAddress: '::1', host: '[::1]:8000' }, undefined, true],
    ['loopback v4-mapped', { ...local, peerAddress: '::ffff:127.0.0.1', host: 'localhost:8000' }, undefined, true],
    ['loopback without Host (HTTP/1.0)', { ...local, host: undefined }, undefined, true],
    ['loopback, Host localhost', { ...local, host: 'localhost' }, undefined, true],
    ['loopback, Host app.localhost', { ...local, host: 'app.localhost:8000' }, undefined, true],
    ['loopback, DNS-rebound Host', { ...local, host: 'evil.example:8000' }, undefined, false],
    ['loopback through a proxy', { ...local, proxied: true }, undefined, false],
    ['remote', remote, undefined, false],
    ['remote with a forged Host: localhost', { ...remote, host: 'localhost' }, undefined, false],
    ['remote with a forged Host: 127.0.0.1', { ...remote, host: '127.0.0.1:8000' }, TOKEN, false],
    ['remote, v4-mapped non-loopback', { ...remote, peerAddress: '::ffff:10.0.0.1' }, undefined, false],
    ['remote with the Bearer token', { ...remote, authorization: `Bearer ${TOKEN}` }, TOKEN, true],
    ['remote with a lower-case bearer', { ...remote, authorization: `bearer ${TOKEN}` }, TOKEN, true],
    ['remote with a wrong token', { ...remote, authorization: 'Bearer nope-nope-nope-nope' }, TOKEN, false],
    ['remote with a token but none configured', { ...remote, authorization: `Bearer ${TOKEN}` }, undefined, false],
    ['remote with the raw token as Basic', { ...remote, authorization: `Basic ${TOKEN}` }, TOKEN, false],
    ['remote with the sign-in cookie', { ...remote, cookie: `a=b; interpool_admin=${cookieValueOf(TOKEN)}` }, TOKEN, true],
    ['remote with the raw token as cookie', { ...remote, cookie: `interpool_admin=${TOKEN}` }, TOKEN, false],
    ['proxied with the Bearer token', { ...local, proxied: true, authorization: `Bearer ${TOKEN}` }, TOKEN, true],
  ])('%s', (_name, facts, token, allowed) => {
    expect(decideAccess(facts, token).allowed).toBe(allowed);
  });

  it('knows loopback addresses and local Host headers', () => {
    expect(['127.0.0.1', '127.255.0.9', '::1', '::ffff:127.0.0.1'].every(isLoopback)).toBe(true);
    expect(['10.0.0.1', '::ffff:10.0.0.1', '0.0.0.0', '', 'localhost', '128.0.0.1'].some(isLoopback)).toBe(false);
    expect(['localhost', 'LOCALHOST:80', '127.0.0.1', '[::1]:8000', '10.1.2.3:9', 'a.localhost'].every(isLocalHostHeader)).toBe(true);
    expect(['example.com', 'localhost.example.com', '127.0.0.1.nip.io', 'evil:8000'].some(isLocalHostHeader)).toBe(false);
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

describe('isAdminTarget: which request targets the admin takes', () => {
  it.each<[string, boolean]>([
    ['/admin', true], ['/admin/', true], ['/admin/api/stats?history=1', true], ['/metrics', true], ['/metrics?x', true],
    ['/administrator', false], ['/', false], ['/api/admin', false], ['/metrics/x', false], ['/%61dmin', false],
    ['/admin/%ff', false], ['/admin/a b', false],
  ])('%s → %s', (target, expected) => {
    expect(isAdminTarget(target, '/admin')).toBe(expected);
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
