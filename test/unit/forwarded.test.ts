import { describe, expect, it } from 'vitest';
import { InterpoolError } from '../../server/errors.ts';
import { buildTrustedProxies, parseForwarded, parseProxyList, resolveClient, type ClientView } from '../../server/forwarded.ts';

const loopback = buildTrustedProxies(['127.0.0.1', '::1']);
const proxyAt = (peer: string, headers: string[], trusted = loopback) => resolveClient({ address: peer, port: 50000 }, headers, trusted);
const view = (overrides: Partial<ClientView>): ClientView => ({ remoteAddress: '127.0.0.1', remotePort: 50000, urlScheme: 'http', host: undefined, ...overrides });

describe('from a peer that is not a trusted proxy, forwarding headers change nothing', () => {
  it.each([
    ['X-Forwarded-For spoofing the client address', ['X-Forwarded-For', '10.0.0.1']],
    ['X-Forwarded-Proto claiming https', ['X-Forwarded-Proto', 'https']],
    ['X-Forwarded-Host claiming another host', ['X-Forwarded-Host', 'bank.example']],
    ['Forwarded with all three', ['Forwarded', 'for=10.0.0.1;proto=https;host=bank.example']],
    ['X-Forwarded-Ssl on', ['X-Forwarded-Ssl', 'on']],
    ['conflicting schemes are not even looked at', ['X-Forwarded-Proto', 'https', 'Forwarded', 'proto=http']],
    ['garbage is not even looked at', ['X-Forwarded-For', 'not an address']],
  ])('%s', (_attack, headers) => {
    expect(proxyAt('203.0.113.9', headers)).toEqual(view({ remoteAddress: '203.0.113.9' }));
  });
});

describe('from a trusted proxy', () => {
  it.each([
    ['no forwarding headers: the socket view', [], view({})],
    ['X-Forwarded-For with one client', ['X-Forwarded-For', '198.51.100.7'], view({ remoteAddress: '198.51.100.7', remotePort: 0 })],
    ['X-Forwarded-For: a client-supplied spoof on the left is skipped', ['X-Forwarded-For', '6.6.6.6, 198.51.100.7'], view({ remoteAddress: '198.51.100.7', remotePort: 0 })],
    ['X-Forwarded-For through two trusted proxies', ['X-Forwarded-For', '198.51.100.7, 127.0.0.1'], view({ remoteAddress: '198.51.100.7', remotePort: 0 })],
    ['X-Forwarded-For repeated header lines are one list', ['X-Forwarded-For', '6.6.6.6', 'X-Forwarded-For', '198.51.100.7'], view({ remoteAddress: '198.51.100.7', remotePort: 0 })],
    ['X-Forwarded-For with a port', ['X-Forwarded-For', '198.51.100.7:4711'], view({ remoteAddress: '198.51.100.7', remotePort: 4711 })],
    ['X-Forwarded-For IPv6', ['X-Forwarded-For', '2001:db8::7'], view({ remoteAddress: '2001:db8::7', remotePort: 0 })],
    ['X-Forwarded-For unknown', ['X-Forwarded-For', 'unknown'], view({ remoteAddress: 'unknown', remotePort: 0 })],
    ['X-Forwarded-Proto https', ['X-Forwarded-Proto', 'https'], view({ urlScheme: 'https' })],
    ['X-Forwarded-Proto in capitals', ['X-Forwarded-Proto', 'HTTPS'], view({ urlScheme: 'https' })],
    ['X-Forwarded-Proto one per hop: the client hop', ['X-Forwarded-For', '198.51.100.7, 127.0.0.1', 'X-Forwarded-Proto', 'https, http'], view({ remoteAddress: '198.51.100.7', remotePort: 0, urlScheme: 'https' })],
    ['X-Forwarded-Proto overwritten by the nearest proxy: the last', ['X-Forwarded-For', '6.6.6.6, 198.51.100.7', 'X-Forwarded-Proto', 'https'], view({ remoteAddress: '198.51.100.7', remotePort: 0, urlScheme: 'https' })],
    ['X-Forwarded-Host', ['X-Forwarded-Host', 'app.example:8443'], view({ host: 'app.example:8443' })],
    ['X-Forwarded-Ssl on', ['X-Forwarded-Ssl', 'on'], view({ urlScheme: 'https' })],
    ['X-Forwarded-Proto and X-Forwarded-Ssl agreeing', ['X-Forwarded-Proto', 'https', 'X-Forwarded-Ssl', 'on'], view({ urlScheme: 'https' })],
    ['Forwarded, RFC 7239', ['Forwarded', 'for=198.51.100.7;proto=https;host=app.example'], view({ remoteAddress: '198.51.100.7', remotePort: 0, urlScheme: 'https', host: 'app.example' })],
    ['Forwarded, quoted IPv6 with a port', ['Forwarded', 'for="[2001:db8:cafe::17]:4711"'], view({ remoteAddress: '2001:db8:cafe::17', remotePort: 4711 })],
    ['Forwarded, case-insensitive names, spaces', ['Forwarded', 'For=198.51.100.7; Proto=https'], view({ remoteAddress: '198.51.100.7', remotePort: 0, urlScheme: 'https' })],
    ['Forwarded, two hops: the client hop and its proto', ['Forwarded', 'for=198.51.100.7;proto=https, for=127.0.0.1;proto=http'], view({ remoteAddress: '198.51.100.7', remotePort: 0, urlScheme: 'https' })],
    ['Forwarded, a spoofed hop on the left is skipped', ['Forwarded', 'for=6.6.6.6;proto=http, for=198.51.100.7;proto=https'], view({ remoteAddress: '198.51.100.7', remotePort: 0, urlScheme: 'https' })],
    ['Forwarded, obfuscated client', ['Forwarded', 'for=_hidden;proto=https'], view({ remoteAddress: '_hidden', remotePort: 0, urlScheme: 'https' })],
    ['Forwarded, proto only', ['Forwarded', 'proto=https'], view({ urlScheme: 'https' })],
    ['Forwarded wins the address over X-Forwarded-For', ['Forwarded', 'for=198.51.100.7', 'X-Forwarded-For', '198.51.100.8'], view({ remoteAddress: '198.51.100.7', remotePort: 0 })],
  ])('%s', (_name, headers, expected) => {
    expect(proxyAt('127.0.0.1', headers)).toEqual(expected);
  });

  it('the IPv6 loopback peer is trusted by default', () => {
    expect(proxyAt('::1', ['X-Forwarded-For', '198.51.100.7'])).toMatchObject({ remoteAddress: '198.51.100.7' });
  });

  it('an IPv4-mapped IPv6 peer is matched as IPv4', () => {
    expect(proxyAt('::ffff:127.0.0.1', ['X-Forwarded-Proto', 'https'])).toMatchObject({ urlScheme: 'https' });
  });

  it('a CIDR range and * are honoured', () => {
    expect(proxyAt('10.1.2.3', ['X-Forwarded-Proto', 'https'], buildTrustedProxies(['10.0.0.0/8']))).toMatchObject({ urlScheme: 'https' });
    expect(proxyAt('11.1.2.3', ['X-Forwarded-Proto', 'https'], buildTrustedProxies(['10.0.0.0/8']))).toMatchObject({ urlScheme: 'http' });
    expect(proxyAt('203.0.113.9', ['X-Forwarded-Proto', 'https'], buildTrustedProxies(['*']))).toMatchObject({ urlScheme: 'https' });
  });
});

describe('from a trusted proxy, contradictions and garbage are 400', () => {
  it.each([
    ['X-Forwarded-Proto https, Forwarded proto http', ['X-Forwarded-Proto', 'https', 'Forwarded', 'proto=http'], /Forwarded proto says http but X-Forwarded-Proto says https/],
    ['X-Forwarded-Proto https, X-Forwarded-Ssl off', ['X-Forwarded-Proto', 'https', 'X-Forwarded-Ssl', 'off'], /X-Forwarded-Proto says https but X-Forwarded-Ssl says http/],
    ['X-Forwarded-Proto not a scheme', ['X-Forwarded-Proto', 'gopher'], /X-Forwarded-Proto "gopher" is neither http nor https/],
    ['X-Forwarded-Ssl not on/off', ['X-Forwarded-Ssl', 'yes'], /neither on nor off/],
    ['X-Forwarded-For not an address', ['X-Forwarded-For', '198.51.100.7, <script>'], /X-Forwarded-For entry "<script>" is not an address/],
    ['X-Forwarded-Host with a path', ['X-Forwarded-Host', 'evil.example/x'], /X-Forwarded-Host "evil.example\/x" is not a host/],
    ['Forwarded not name=value pairs', ['Forwarded', 'nonsense'], /not name=value pairs/],
    ['Forwarded with an unterminated quote', ['Forwarded', 'for="198.51.100.7'], /not name=value pairs/],
  ])('%s', (_name, headers, message) => {
    const result = proxyAt('127.0.0.1', headers);
    expect(result).toBeInstanceOf(InterpoolError);
    expect((result as InterpoolError).statusCode).toBe(400);
    expect((result as InterpoolError).code).toBe('INTERPOOL_ERR_FORWARDED');
    expect((result as InterpoolError).message).toMatch(message);
  });
});

describe('parseProxyList (--forwarded-allow-ips)', () => {
  it.each([
    ['127.0.0.1,::1', ['127.0.0.1', '::1']],
    [' 10.0.0.0/8 , 192.168.1.1 ', ['10.0.0.0/8', '192.168.1.1']],
    ['*', ['*']],
    [['fd00::/8'], ['fd00::/8']],
    ['', []],
  ])('%j is %j', (raw, expected) => {
    expect(parseProxyList(raw)).toEqual(expected);
  });

  it.each([['localhost'], ['10.0.0.0/33'], ['1.2.3'], ['::1/129'], [42]])('%j is refused with a message', (raw) => {
    expect(typeof parseProxyList(raw)).toBe('string');
  });
});

describe('parseForwarded', () => {
  it('splits elements and pairs, unquotes values', () => {
    expect(parseForwarded('for=192.0.2.60;proto=http;by=203.0.113.43, for="[2001:db8:cafe::17]:4711";host="a.example"')).toEqual([
      { address: '192.0.2.60', port: undefined, proto: 'http' },
      { address: '2001:db8:cafe::17', port: '4711', host: 'a.example' },
    ]);
  });
});
