// Strict request parsing over raw TCP: every request that could be read two ways
// (request smuggling, header confusion) is refused with one text/plain line and the
// connection closed, so the bytes after it — here always a second, "smuggled" request —
// are never served. Each case is sent whole and again one byte per TCP segment.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exchange } from './hardening-support.ts';
import { startTestServer, waitFor, type TestServer } from './support.ts';

let t: TestServer;

beforeAll(async () => {
  t = await startTestServer(['/=test/fixtures/apps/environ-echo.ts', '--workers', '1']);
});
afterAll(() => t?.close());

const SMUGGLED = 'GET /smuggled HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n';
const post = (headers: string[], body: string) => `POST /front HTTP/1.1\r\nHost: a\r\n${headers.map((h) => `${h}\r\n`).join('')}\r\n${body}`;

// [attack, request bytes, status, what the one-line answer names]
const refused: [string, string, number, RegExp][] = [
  ['Host confusion: two Host headers', 'GET /front HTTP/1.1\r\nHost: a\r\nHost: evil\r\n\r\n', 400, /more than one Host header/],
  ['CL.CL desync: two different Content-Length', post(['Content-Length: 1', 'Content-Length: 2'], 'xx'), 400, /duplicate content-length/i],
  ['CL.CL desync: two equal Content-Length', post(['Content-Length: 2', 'Content-Length: 2'], 'xx'), 400, /duplicate content-length/i],
  ['CL list: Content-Length "2, 2"', post(['Content-Length: 2, 2'], 'xx'), 400, /content-length/i],
  ['CL sign: Content-Length "+2"', post(['Content-Length: +2'], 'xx'), 400, /content-length/i],
  ['content-type confusion: two Content-Type', post(['Content-Type: text/plain', 'Content-Type: application/json', 'Content-Length: 2'], 'xx'), 400, /more than one Content-Type header/],
  ['CL.TE desync: Content-Length then Transfer-Encoding', post(['Content-Length: 4', 'Transfer-Encoding: chunked'], '0\r\n\r\n'), 400, /transfer-encoding can't be present with content-length/i],
  ['TE.CL desync: Transfer-Encoding then Content-Length', post(['Transfer-Encoding: chunked', 'Content-Length: 4'], '0\r\n\r\n'), 400, /content-length can't be present with transfer-encoding/i],
  ['TE obfuscation: gzip alone (no framing)', post(['Transfer-Encoding: gzip'], ''), 400, /Transfer-Encoding "gzip" is not supported/],
  ['TE obfuscation: gzip, chunked', post(['Transfer-Encoding: gzip, chunked'], '0\r\n\r\n'), 400, /Transfer-Encoding "gzip, chunked" is not supported/],
  ['TE obfuscation: chunked, chunked', post(['Transfer-Encoding: chunked, chunked'], '0\r\n\r\n'), 400, /transfer-encoding/i],
  ['TE obfuscation: two Transfer-Encoding headers', post(['Transfer-Encoding: chunked', 'Transfer-Encoding: chunked'], '0\r\n\r\n'), 400, /transfer-encoding/i],
  ['TE obfuscation: xchunked', post(['Transfer-Encoding: xchunked'], ''), 400, /Transfer-Encoding "xchunked" is not supported/],
  ['TE obfuscation: identity', post(['Transfer-Encoding: identity'], ''), 400, /Transfer-Encoding "identity" is not supported/],
  ['TE obfuscation: space before the colon', post(['Transfer-Encoding : chunked'], '0\r\n\r\n'), 400, /invalid header/i],
  ['TE in HTTP/1.0 (framing a 1.0 peer cannot see)', 'POST /front HTTP/1.0\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n', 400, /Transfer-Encoding in an HTTP\/1.0 request/],
  ['chunk size overflow', post(['Transfer-Encoding: chunked'], 'FFFFFFFFFFFFFFFFF1\r\nx\r\n0\r\n\r\n'), 400, /chunk size/i],
  ['chunk size with a bare LF', post(['Transfer-Encoding: chunked'], '1\nx\n0\n\n'), 400, /expected cr/i],
  ['asterisk-form with GET', 'GET * HTTP/1.1\r\nHost: a\r\n\r\n', 400, /the request target \* is only for OPTIONS, not GET/],
  ['asterisk-form with POST', 'POST * HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n', 400, /only for OPTIONS/],
  ['NUL in a header value', 'GET /front HTTP/1.1\r\nHost: a\r\nX-A: a\x00b\r\n\r\n', 400, /invalid header value char/i],
  ['control byte in a header value', 'GET /front HTTP/1.1\r\nHost: a\r\nX-A: a\x01b\r\n\r\n', 400, /invalid header value char/i],
  ['DEL in a header value', 'GET /front HTTP/1.1\r\nHost: a\r\nX-A: a\x7fb\r\n\r\n', 400, /invalid header value char/i],
  ['bare CR inside a header value', 'GET /front HTTP/1.1\r\nHost: a\r\nX-A: a\rX-B: b\r\n\r\n', 400, /expected lf/i],
  ['bare LF ending a header', 'GET /front HTTP/1.1\r\nHost: a\nX-A: b\r\n\r\n', 400, /expected cr/i],
  ['bare LF line ends throughout', 'GET /front HTTP/1.1\nHost: a\n\n', 400, /expected crlf/i],
  ['obs-fold continuation line', 'GET /front HTTP/1.1\r\nHost: a\r\nX-A: a\r\n b\r\n\r\n', 400, /whitespace/i],
  ['space inside a header name', 'GET /front HTTP/1.1\r\nHost: a\r\nX A: b\r\n\r\n', 400, /invalid header token/i],
  ['slash in a header name', 'GET /front HTTP/1.1\r\nHost: a\r\nX/A: b\r\n\r\n', 400, /invalid header token/i],
  ['non-ASCII byte in a header name', 'GET /front HTTP/1.1\r\nHost: a\r\nX\xe9: b\r\n\r\n', 400, /invalid header token/i],
  ['empty header name', 'GET /front HTTP/1.1\r\nHost: a\r\n: b\r\n\r\n', 400, /invalid header token/i],
  ['whitespace before the first header', 'GET /front HTTP/1.1\r\n Host: a\r\n\r\n', 400, /unexpected space/i],
  ['space inside the request target', 'GET /a b HTTP/1.1\r\nHost: a\r\n\r\n', 400, /expected http/i],
  ['control byte in the request target', 'GET /a\x01b HTTP/1.1\r\nHost: a\r\n\r\n', 400, /invalid char in url/i],
  ['lower-case method', 'get /front HTTP/1.1\r\nHost: a\r\n\r\n', 400, /invalid method/i],
  ['absolute-form target with userinfo', 'GET http://user@example.test/front HTTP/1.1\r\nHost: a\r\n\r\n', 400, /userinfo/],
  ['absolute-form target without a host', 'GET http:///front HTTP/1.1\r\nHost: a\r\n\r\n', 400, /names no host/],
  ['missing Host in HTTP/1.1', 'GET /front HTTP/1.1\r\n\r\n', 400, /HTTP\/1\.1 request without a Host header/],
  ['HTTP/0.9 request line', 'GET /front HTTP/0.9\r\nHost: a\r\n\r\n', 505, /(HTTP\/0\.9|this HTTP version) is not supported/],
  ['HTTP/2.0 request line on HTTP/1', 'GET /front HTTP/2.0\r\nHost: a\r\n\r\n', 505, /(HTTP\/2\.0|this HTTP version) is not supported/],
  ['HTTP/1.2 request line', 'GET /front HTTP/1.2\r\nHost: a\r\n\r\n', 505, /(HTTP\/1\.2|this HTTP version) is not supported/],
  ['HTTP/3.0 request line', 'GET /front HTTP/3.0\r\nHost: a\r\n\r\n', 505, /(HTTP\/3\.0|this HTTP version) is not supported/],
  ['HTTP/2 connection preface (prior knowledge)', 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 505, /(HTTP\/2\.0|this HTTP version) is not supported/],
  // Node closed the connection without a word (no listener for its 'connect' event).
  ['CONNECT (a proxy\'s tunnel)', 'CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n', 405, /CONNECT is not supported: this server is no proxy \(INTERPOOL_ERR_CONNECT\)/],
];

describe.each([
  ['sent whole', false],
  ['sent one byte per write', true],
])('refused before any worker, connection closed (%s)', (_how, oneByteWrites) => {
  it.each(refused)('%s', async (_attack, request, status, names) => {
    const { response, statusLines, closedByServer } = await exchange(t.port, request + SMUGGLED, { oneByteWrites });
    expect(response.status).toBe(status);
    expect(statusLines).toHaveLength(1);
    expect(closedByServer).toBe(true);
    expect(headerValue(response.headers, 'content-type')).toBe('text/plain; charset=utf-8');
    expect(headerValue(response.headers, 'connection')).toBe('close');
    const body = response.body.toString('utf8');
    expect(body).toMatch(/^[^\n]+\(INTERPOOL_ERR_[A-Z_]+\)\n$/);
    expect(body).toMatch(names);
    // The smuggled request is never even logged; the refused one never reached a worker.
    expect(t.logs.some((line) => line.path === '/smuggled' || (line.path === '/front' && line.worker !== '-'))).toBe(false);
  });
});

describe('a chunked body\'s trailer section (RFC 9110 §6.5.1)', () => {
  const AFTER = 'GET /after HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n';
  it.each([
    ['Host', 'Host: evil.test'],
    ['Authorization', 'Authorization: Bearer stolen'],
    ['X-Forwarded-For', 'X-Forwarded-For: 6.6.6.6'],
    ['Content-Type', 'Content-Type: application/json'],
    ['Trailer', 'Trailer: X-A'],
    ['Host, after an allowed field', 'X-Checksum: abc\r\nHost: evil.test'],
  ])('may not carry %s: 400 before any worker, and the next request is still served', async (name, trailer) => {
    const { response, statusLines } = await exchange(t.port, post(['Transfer-Encoding: chunked'], `2\r\nok\r\n0\r\n${trailer}\r\n\r\n`) + AFTER);
    expect(statusLines).toEqual(['HTTP/1.1 400 Bad Request', 'HTTP/1.1 200 OK']);
    expect(response.body.toString('utf8').split('\n')[0]).toBe(`the trailer section of the chunked body carries ${name.split(',')[0]!}, which a trailer may not (RFC 9110 §6.5.1) (INTERPOOL_ERR_FORBIDDEN_TRAILER)`);
    await waitFor(() => t.logs.some((line) => line.path === '/after'), 5000, 'the access line for /after');
    expect(t.logs.some((line) => line.path === '/front' && line.worker !== '-')).toBe(false);
  });

  it('may carry other fields (a checksum): served', async () => {
    const { response } = await exchange(t.port, post(['Transfer-Encoding: chunked', 'Connection: close'], '2\r\nok\r\n0\r\nX-Checksum: abc\r\n\r\n'));
    expect(response.status).toBe(200);
  });
});

describe('sound requests still pass', () => {
  it.each([
    ['OPTIONS *', 'OPTIONS * HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n'],
    ['a single chunked body', post(['Transfer-Encoding: chunked', 'Connection: close'], '2\r\nok\r\n0\r\n\r\n')],
    ['Transfer-Encoding in capitals', post(['Transfer-Encoding: CHUNKED', 'Connection: close'], '2\r\nok\r\n0\r\n\r\n')],
    ['HTTP/1.0 without Host', 'GET /plain HTTP/1.0\r\n\r\n'],
    ['latin-1 (obs-text) in a header value', 'GET /plain HTTP/1.1\r\nHost: a\r\nX-Name: caf\xe9\r\nConnection: close\r\n\r\n'],
  ])('%s', async (_name, request) => {
    const { response, statusLines } = await exchange(t.port, request);
    expect(statusLines).toHaveLength(1);
    expect(response.status).not.toBe(400);
    expect(response.status).not.toBe(505);
  });

  it('the server keeps serving after every refusal, on keep-alive connections too', async () => {
    const { response, statusLines } = await exchange(t.port, 'GET /a HTTP/1.1\r\nHost: a\r\n\r\nGET /b HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n');
    expect(statusLines).toEqual(['HTTP/1.1 200 OK', 'HTTP/1.1 200 OK']);
    expect(response.status).toBe(200);
    await waitFor(() => t.logs.some((line) => line.path === '/b'), 5000, 'the access line for /b');
  });
});

function headerValue(headers: [string, string][], name: string): string | undefined {
  return headers.find(([key]) => key.toLowerCase() === name)?.[1];
}
