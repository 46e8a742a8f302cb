import { describe, expect, it } from 'vitest';
import { buildCgi, decodePathLatin1, headersToCgi, serverNameAndPort, splitRequestTarget, toWireCgi, type RequestFacts } from '../../server/environ.ts';
import { unpackCgi } from '../../runtime/wire-cgi.ts';

const facts = (overrides: Partial<RequestFacts> = {}): RequestFacts => ({
  method: 'GET', rawUrl: '/', rawHeaders: ['Host', 'example.test:8080'], httpVersion: '1.1',
  localAddress: '127.0.0.1', localPort: 8000, remoteAddress: '127.0.0.2', remotePort: 51234,
  urlScheme: 'http', bodyLength: 0, ...overrides,
});

describe('splitRequestTarget', () => {
  it.each([
    ['/', '/', ''],
    ['/a/b?x=1&y=2', '/a/b', 'x=1&y=2'],
    ['/a?', '/a', ''],
    ['/a?b?c', '/a', 'b?c'],
    ['/a%20b?q=%20', '/a%20b', 'q=%20'],
    ['http://host:81/p?q', '/p', 'q'],
    ['http://host', '/', ''],
    ['/p#frag', '/p', ''],
    ['/p?q=1#frag?x', '/p', 'q=1'],
  ])('%s → path %s, query %s', (raw, path, query) => {
    expect(splitRequestTarget(raw)).toEqual({ rawPath: path, query });
  });
});

describe('decodePathLatin1 (PEP 3333: bytes as latin-1)', () => {
  it.each([
    ['plain path', '/a/b', '/a/b'],
    ['space', '/a%20b', '/a b'],
    ['utf-8 é arrives as its two bytes', '/caf%C3%A9', '/caf\u00c3\u00a9'],
    ['lower-case hex', '/%c3%a9', '/\u00c3\u00a9'],
    ['encoded slash is decoded', '/a%2Fb', '/a/b'],
    ['malformed escape kept', '/100%', '/100%'],
    ['half escape kept', '/%4', '/%4'],
    ['non-hex escape kept', '/%zz', '/%zz'],
    ['NUL byte', '/%00', '/\u0000'],
  ])('%s', (_name, raw, decoded) => {
    expect(decodePathLatin1(raw)).toBe(decoded);
  });
});

describe('headersToCgi', () => {
  it.each([
    ['simple header', ['Accept', 'text/html'], { HTTP_ACCEPT: 'text/html' }],
    ['dashes become underscores', ['X-Request-Id', 'abc'], { HTTP_X_REQUEST_ID: 'abc' }],
    ['underscore in a name is dropped (cannot pose as a dash)', ['X_Forwarded_For', '6.6.6.6'], {}],
    ['underscore spoof next to the real header', ['X-Forwarded-For', '1.1.1.1', 'X_Forwarded_For', '6.6.6.6'], { HTTP_X_FORWARDED_FOR: '1.1.1.1' }],
    ['dot in a name is dropped', ['X.Y', '1'], {}],
    ['Content-Type is CONTENT_TYPE, never HTTP_', ['Content-Type', 'text/plain'], { CONTENT_TYPE: 'text/plain' }],
    ['Content-Length is CONTENT_LENGTH, never HTTP_', ['Content-Length', '5'], { CONTENT_LENGTH: '5' }],
    ['Proxy never becomes HTTP_PROXY (httpoxy)', ['Proxy', 'http://evil'], {}],
    ['Proxy in any case', ['PROXY', 'http://evil'], {}],
    ['repeats joined with ", "', ['Accept', 'a', 'Accept', 'b'], { HTTP_ACCEPT: 'a, b' }],
    ['Cookie repeats joined with "; "', ['Cookie', 'a=1', 'Cookie', 'b=2'], { HTTP_COOKIE: 'a=1; b=2' }],
    ['names are case-insensitive when joined', ['x-a', '1', 'X-A', '2'], { HTTP_X_A: '1, 2' }],
    ['latin-1 value kept', ['X-Name', 'caf\u00e9'], { HTTP_X_NAME: 'caf\u00e9' }],
  ])('%s', (_name, raw, expected) => {
    expect(headersToCgi(raw as string[])).toEqual(expected);
  });
});

describe('serverNameAndPort', () => {
  it.each([
    ['Host with port', 'example.test:8080', ['example.test', '8080']],
    ['Host without port (http)', 'example.test', ['example.test', '80']],
    ['IPv6 Host', '[::1]:9000', ['[::1]', '9000']],
    ['no Host: the local socket', undefined, ['127.0.0.1', '8000']],
  ])('%s', (_name, host, expected) => {
    expect(serverNameAndPort(host, facts())).toEqual(expected);
  });

  it('defaults to 443 for https', () => {
    expect(serverNameAndPort('example.test', facts({ urlScheme: 'https' }))).toEqual(['example.test', '443']);
  });
});

describe('buildCgi', () => {
  it('holds every CGI key', () => {
    const cgi = buildCgi(facts({ method: 'POST', rawUrl: '/api/x?a=1', rawHeaders: ['Host', 'h:1', 'Content-Type', 'text/plain'], bodyLength: 3 }), '/api', '/x', 'a=1');
    expect(cgi).toEqual({
      REQUEST_METHOD: 'POST', SCRIPT_NAME: '/api', PATH_INFO: '/x', QUERY_STRING: 'a=1',
      CONTENT_TYPE: 'text/plain', CONTENT_LENGTH: '3', SERVER_NAME: 'h', SERVER_PORT: '1',
      SERVER_PROTOCOL: 'HTTP/1.1', REMOTE_ADDR: '127.0.0.2', REMOTE_PORT: '51234', HTTP_HOST: 'h:1',
      REQUEST_URI: '/api/x?a=1', RAW_URI: '/api/x?a=1',
    });
  });

  it('leaves CONTENT_TYPE and CONTENT_LENGTH out when there is no body, as gunicorn does', () => {
    const cgi = buildCgi(facts(), '', '/', '');
    expect(cgi).not.toHaveProperty('CONTENT_TYPE');
    expect(cgi).not.toHaveProperty('CONTENT_LENGTH');
  });

  it.each([
    ['origin-form: Host', '/x', undefined, 'example.test:8080', 'example.test', '8080'],
    ['absolute-form: the target\'s authority replaces Host (RFC 9112 §3.2.2)', 'http://origin.test/x', undefined, 'origin.test', 'origin.test', '80'],
    ['absolute-form with a port', 'http://origin.test:81/x?q', undefined, 'origin.test:81', 'origin.test', '81'],
    ['absolute-form without a path', 'http://origin.test', undefined, 'origin.test', 'origin.test', '80'],
    ['absolute-form, scheme in capitals', 'HTTP://Origin.Test/x', undefined, 'Origin.Test', 'Origin.Test', '80'],
    ['a trusted proxy\'s host wins over both', 'http://origin.test/x', 'proxied.test', 'proxied.test', 'proxied.test', '80'],
  ])('HTTP_HOST and SERVER_NAME: %s', (_name, rawUrl, forwardedHost, host, serverName, serverPort) => {
    const cgi = buildCgi(facts({ rawUrl, forwardedHost }), '', '/x', '');
    expect([cgi.HTTP_HOST, cgi.SERVER_NAME, cgi.SERVER_PORT]).toEqual([host, serverName, serverPort]);
  });

  it('a header cannot overwrite a CGI variable', () => {
    const cgi = buildCgi(facts({ rawHeaders: ['Remote-Addr', '6.6.6.6', 'Script-Name', '/x'] }), '', '/', '');
    expect(cgi.REMOTE_ADDR).toBe('127.0.0.2');
    expect(cgi.SCRIPT_NAME).toBe('');
    expect(cgi.HTTP_REMOTE_ADDR).toBe('6.6.6.6');
  });
});

describe('the CGI variables on their way to the worker (toWireCgi, then unpackCgi)', () => {
  it.each([
    ['ordinary', { REQUEST_METHOD: 'GET', PATH_INFO: '/caf\u00e9', QUERY_STRING: '', HTTP_X_EMPTY: '' }],
    ['no variables', {}],
    ['a long value', { HTTP_COOKIE: `a=${'x'.repeat(10_000)}` }],
    ['a character past latin-1', { SCRIPT_NAME: '/\u20ac', HTTP_X_LAST: 'end' }],
  ])('%s: packed into one string, and read back the same', (_label, cgi: Record<string, string>) => {
    const wire = toWireCgi({ ...cgi });
    expect(typeof wire).toBe('string');
    expect(unpackCgi(wire)).toEqual(cgi);
  });

  it('a value with a NUL of its own crosses as the object, unpacked as it is', () => {
    const cgi = { REQUEST_METHOD: 'GET', PATH_INFO: '/a\u0000b', QUERY_STRING: 'q=1' };
    const wire = toWireCgi(cgi);
    expect(wire).toBe(cgi);
    expect(unpackCgi(wire)).toEqual({ REQUEST_METHOD: 'GET', PATH_INFO: '/a\u0000b', QUERY_STRING: 'q=1' });
  });
});
