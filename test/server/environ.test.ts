// The WSGI environ a JavaScript app receives, key by key, and the header rules:
// real requests over real sockets to a real pool.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getRequest, rawRequest, startTestServer, type TestServer } from './support.ts';

const APP = 'test/fixtures/apps/environ-echo.ts';
let t: TestServer;

beforeAll(async () => {
  t = await startTestServer([`/=${APP}`, `/api=${APP}`, `/deep/mount=${APP}`, `/caf\u00e9=${APP}`, '--workers', '1']);
});
afterAll(() => t?.close());

/** Send a raw request and return the environ the app saw. */
async function environFor(request: string): Promise<Record<string, unknown>> {
  const response = await rawRequest(t.port, request);
  expect(response.statusLine).toBe('HTTP/1.1 200 OK');
  return JSON.parse(response.body.toString('utf8')) as Record<string, unknown>;
}

describe('CGI keys', () => {
  it.each([
    ['REQUEST_METHOD', getRequest('/x'), 'GET'],
    ['REQUEST_METHOD of a DELETE', getRequest('/x', [], 'DELETE'), 'DELETE'],
    ['SCRIPT_NAME at the root', getRequest('/x'), ''],
    ['PATH_INFO', getRequest('/a/b/c'), '/a/b/c'],
    ['PATH_INFO percent-decoded', getRequest('/hello%20world%2Fslash'), '/hello world/slash'],
    ['PATH_INFO as latin-1 bytes', getRequest('/na%C3%AFve'), '/na\u00c3\u00afve'],
    // A NUL of its own cannot cross in the packed CGI string (protocol.ts WireCgi): the object form carries it.
    ['PATH_INFO with a NUL decoded from %00', getRequest('/a%00b?q=1'), '/a\u0000b'],
    ['QUERY_STRING raw, not decoded', getRequest('/x?a=1&b=%20c+d&e'), 'a=1&b=%20c+d&e'],
    ['QUERY_STRING empty without "?"', getRequest('/x'), ''],
    ['QUERY_STRING empty after a bare "?"', getRequest('/x?'), ''],
    // Absent, as under gunicorn and mod_wsgi (an outside test: int(environ.get("CONTENT_LENGTH", 0))).
    ['CONTENT_TYPE absent without the header', getRequest('/x'), undefined],
    ['CONTENT_LENGTH absent without a body', getRequest('/x'), undefined],
    ['SERVER_NAME from Host', getRequest('/x'), 'localhost'],
    ['SERVER_PROTOCOL HTTP/1.1', getRequest('/x'), 'HTTP/1.1'],
    ['SERVER_PROTOCOL HTTP/1.0', 'GET /x HTTP/1.0\r\nHost: localhost\r\n\r\n', 'HTTP/1.0'],
    ['REMOTE_ADDR', getRequest('/x'), '127.0.0.1'],
    ['wsgi.url_scheme', getRequest('/x'), 'http'],
    ['wsgi.multithread', getRequest('/x'), false],
    // One interpreter (--workers 1), one process: nothing else runs the app meanwhile.
    ['wsgi.multiprocess', getRequest('/x'), false],
    ['wsgi.run_once', getRequest('/x'), false],
    ['wsgi.input_terminated', getRequest('/x'), true],
  ])('%s', async (label, request, expected) => {
    const key = label.split(' ')[0]!;
    const environ = await environFor(request);
    expect(environ[key]).toEqual(expected);
  });

  it('wsgi.version is [1, 0]', async () => {
    expect((await environFor(getRequest('/x')))['wsgi.version']).toEqual([1, 0]);
  });

  it('CONTENT_TYPE and CONTENT_LENGTH come from a POST body', async () => {
    const body = '{"a":1}';
    const environ = await environFor(
      `POST /x HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`,
    );
    expect(environ.CONTENT_TYPE).toBe('application/json');
    expect(environ.CONTENT_LENGTH).toBe(String(body.length));
    expect(environ.REQUEST_METHOD).toBe('POST');
  });

  it('SERVER_PORT from the Host header, and 80 when Host has no port', async () => {
    expect((await environFor(getRequest('/x').replace('Host: localhost', 'Host: example.test:8123'))).SERVER_PORT).toBe('8123');
    expect((await environFor(getRequest('/x').replace('Host: localhost', 'Host: example.test'))).SERVER_PORT).toBe('80');
  });

  it('REMOTE_PORT is the client socket\'s port', async () => {
    const environ = await environFor(getRequest('/x'));
    expect(Number(environ.REMOTE_PORT)).toBeGreaterThan(0);
    expect(Number(environ.REMOTE_PORT)).not.toBe(t.port);
  });

  it('every value the CGI rules define is a string', async () => {
    const environ = await environFor(getRequest('/x?q=1', ['X-Thing: 1', 'Content-Type: text/plain', 'Content-Length: 0']));
    for (const key of ['REQUEST_METHOD', 'SCRIPT_NAME', 'PATH_INFO', 'QUERY_STRING', 'CONTENT_TYPE', 'CONTENT_LENGTH',
      'SERVER_NAME', 'SERVER_PORT', 'SERVER_PROTOCOL', 'REMOTE_ADDR', 'REMOTE_PORT', 'HTTP_X_THING']) {
      expect(typeof environ[key], key).toBe('string');
    }
  });

  it('wsgi.input and wsgi.errors have the PEP 3333 methods', async () => {
    const environ = await environFor(getRequest('/x'));
    expect(environ['wsgi.input']).toEqual(['read', 'readline', 'readlines', '[Symbol.iterator]']);
    expect(environ['wsgi.errors']).toEqual(['write', 'writelines', 'flush']);
  });
});

// Fastify's router would decode the path as UTF-8 and refuse these with its own 400;
// PEP 3333 wants the bytes, as latin-1 characters, with malformed escapes kept.
describe('paths that are not UTF-8 reach the app as latin-1 bytes', () => {
  it.each([
    ['/caf%E9', '/caf\u00e9'],
    ['/%FF%FE', '/\u00ff\u00fe'],
    ['/%C3%28', '/\u00c3('],
    ['/100%zz', '/100%zz'],
    ['/trailing%', '/trailing%'],
  ])('%s → PATH_INFO %j', async (path, pathInfo) => {
    expect((await environFor(getRequest(path))).PATH_INFO).toBe(pathInfo);
  });
});

describe('request headers as HTTP_*', () => {
  it.each([
    ['a plain header', ['X-Custom-Thing: value 1'], { HTTP_X_CUSTOM_THING: 'value 1' }],
    ['the Host header', [], { HTTP_HOST: 'localhost' }],
    ['a name with "_" is dropped', ['X_Forwarded_For: 6.6.6.6'], { HTTP_X_FORWARDED_FOR: undefined }],
    ['"_" cannot pose as "-" next to the real header', ['X-Forwarded-For: 1.2.3.4', 'X_Forwarded_For: 6.6.6.6'], { HTTP_X_FORWARDED_FOR: '1.2.3.4' }],
    ['Content-Type is never HTTP_CONTENT_TYPE', ['Content-Type: text/plain'], { CONTENT_TYPE: 'text/plain', HTTP_CONTENT_TYPE: undefined }],
    ['Proxy never becomes HTTP_PROXY', ['Proxy: http://evil.test:3128'], { HTTP_PROXY: undefined }],
    ['repeats are joined with ", "', ['Accept: text/html', 'Accept: application/json'], { HTTP_ACCEPT: 'text/html, application/json' }],
    ['repeated X- headers are joined with ", "', ['X-Multi: a', 'X-Multi: b', 'X-Multi: c'], { HTTP_X_MULTI: 'a, b, c' }],
    ['repeated Cookie is joined with "; "', ['Cookie: a=1', 'Cookie: b=2'], { HTTP_COOKIE: 'a=1; b=2' }],
    ['name case does not matter', ['x-lower-case: 1', 'X-LOWER-CASE: 2'], { HTTP_X_LOWER_CASE: '1, 2' }],
    ['an empty value is kept', ['X-Empty:'], { HTTP_X_EMPTY: '' }],
  ])('%s', async (_label, headers, expected) => {
    const environ = await environFor(getRequest('/x', headers));
    for (const [key, value] of Object.entries(expected)) expect(environ[key], key).toBe(value);
  });

  it('Content-Length is never HTTP_CONTENT_LENGTH', async () => {
    const environ = await environFor('POST /x HTTP/1.1\r\nHost: localhost\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi');
    expect(environ.CONTENT_LENGTH).toBe('2');
    expect(environ).not.toHaveProperty('HTTP_CONTENT_LENGTH');
  });

  it('no header with "_" in its name reaches the environ at all', async () => {
    const environ = await environFor(getRequest('/x', ['Weird_Name: 1', 'Also_Weird: 2']));
    expect(Object.keys(environ).filter((key) => /WEIRD/.test(key))).toEqual([]);
  });
});

describe('absolute-form request target: its authority replaces Host, its path is matched (RFC 9112 §3.2.2)', () => {
  const absolute = (target: string, host = 'other.test') => `GET ${target} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`;
  it.each([
    ['at the root', absolute('http://example.com/x'), { HTTP_HOST: 'example.com', SERVER_NAME: 'example.com', SERVER_PORT: '80', SCRIPT_NAME: '', PATH_INFO: '/x', QUERY_STRING: '' }],
    ['with a port and a query', absolute('http://example.com:8081/x?q=1'), { HTTP_HOST: 'example.com:8081', SERVER_NAME: 'example.com', SERVER_PORT: '8081', PATH_INFO: '/x', QUERY_STRING: 'q=1' }],
    ['mounted at /api', absolute('http://example.com/api/x'), { HTTP_HOST: 'example.com', SCRIPT_NAME: '/api', PATH_INFO: '/x' }],
    ['a Host that names a mount does not choose it', absolute('http://example.com/deep/mount/y', 'api'), { HTTP_HOST: 'example.com', SCRIPT_NAME: '/deep/mount', PATH_INFO: '/y' }],
    ['without a path', absolute('http://example.com'), { HTTP_HOST: 'example.com', SCRIPT_NAME: '', PATH_INFO: '/' }],
    ['percent-decoded path', absolute('http://example.com/a%20b'), { PATH_INFO: '/a b' }],
    ['HTTP/1.0 without Host', 'GET http://example.com/x HTTP/1.0\r\n\r\n', { HTTP_HOST: 'example.com', SERVER_NAME: 'example.com', PATH_INFO: '/x' }],
  ])('%s', async (_label, request, expected) => {
    const environ = await environFor(request);
    for (const [key, value] of Object.entries(expected)) expect(environ[key], key).toBe(value);
  });
});

describe('mounts split the path into SCRIPT_NAME and PATH_INFO', () => {
  it.each([
    ['/api', '/api', ''],
    ['/api/', '/api', '/'],
    ['/api/x', '/api', '/x'],
    ['/api/x/y?z=1', '/api', '/x/y'],
    ['/apix', '', '/apix'],
    ['/apix/y', '', '/apix/y'],
    ['/deep/mount/z', '/deep/mount', '/z'],
    ['/deep/mountain', '', '/deep/mountain'],
    ['/deep', '', '/deep'],
    ['/', '', '/'],
    ['/other/path', '', '/other/path'],
    ['/api/caf%C3%A9', '/api', '/caf\u00c3\u00a9'],
    // A prefix given as /café: the UTF-8 bytes browsers send, in PEP 3333's form.
    ['/caf%C3%A9/p/x', '/caf\u00c3\u00a9', '/p/x'],
    ['/caf%C3%A9', '/caf\u00c3\u00a9', ''],
    ['/caf%E9/p', '', '/caf\u00e9/p'],
  ])('%s → SCRIPT_NAME %j, PATH_INFO %j', async (path, scriptName, pathInfo) => {
    const environ = await environFor(getRequest(path));
    expect(environ.SCRIPT_NAME).toBe(scriptName);
    expect(environ.PATH_INFO).toBe(pathInfo);
  });
});
