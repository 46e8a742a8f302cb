// Request limits with gunicorn's defaults, over raw TCP: 414 for a long request line,
// 431 for too many or too large header fields (Node would otherwise cut at 16 KiB or
// silently drop headers past 2000), 413 for a body over --body-limit, chunked included.
// Each limit is probed at exactly the limit (served) and one past it (refused).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exchange } from './hardening-support.ts';
import { startTestServer, type TestServer } from './support.ts';

let t: TestServer;
let small: TestServer;

beforeAll(async () => {
  [t, small] = await Promise.all([
    startTestServer(['/=test/fixtures/apps/environ-echo.ts', '--workers', '1']),
    startTestServer(['/=test/fixtures/apps/input-reader.ts', '--workers', '1', '--body-limit', '1k',
      '--limit-request-line', '100', '--limit-request-fields', '5', '--limit-request-field-size', '64']),
  ]);
});
afterAll(() => Promise.all([t?.close(), small?.close()]));

const lineOf = (length: number) => `GET /${'a'.repeat(length - 'GET / HTTP/1.1'.length)} HTTP/1.1`;
const request = (line: string, headers: string[] = []) => `${line}\r\nHost: a\r\n${headers.map((h) => `${h}\r\n`).join('')}Connection: close\r\n\r\n`;
const fields = (count: number) => Array.from({ length: count }, (_, i) => `X-Field-${i}: v`);
const fieldOf = (length: number) => `X-Big: ${'v'.repeat(length - 'X-Big: '.length)}`;

describe('default limits (gunicorn: 4094, 100, 8190)', () => {
  it.each([
    ['request line at 4094 bytes is served', request(lineOf(4094)), 200, undefined],
    ['long-URL attack: request line at 4095 bytes', request(lineOf(4095)), 414, /--limit-request-line \(4094 bytes\)/],
    ['100 header fields are served', request('GET / HTTP/1.1', fields(98)), 200, undefined],
    ['header flood: 101 header fields', request('GET / HTTP/1.1', fields(99)), 431, /--limit-request-fields \(100\)/],
    // Node stops at the 102nd field itself (HPE_HEADER_OVERFLOW, as for too many bytes): still named as the field limit.
    ['header flood: 102 header fields', request('GET / HTTP/1.1', fields(100)), 431, /--limit-request-fields \(100\)/],
    ['header flood: 150 header fields', request('GET / HTTP/1.1', fields(148)), 431, /--limit-request-fields \(100\)/],
    ['header flood past Node\'s own 2000 (never silently truncated)', request('GET / HTTP/1.1', fields(2500)), 431, /--limit-request-fields \(100\)/],
    // Counted as gunicorn counts it, with the line's CRLF: 8188 + 2 fits in 8190, 8189 + 2 does not.
    ['a header line of 8188 bytes is served', request('GET / HTTP/1.1', [fieldOf(8188)]), 200, undefined],
    ['oversized header: a line of 8189 bytes (8191 with its CRLF)', request('GET / HTTP/1.1', [fieldOf(8189)]), 431, /header X-Big is longer than --limit-request-field-size \(8190 bytes\)/],
    ['a head past Node\'s default 16 KiB, within the limits, is served', request('GET / HTTP/1.1', [fieldOf(8000), fieldOf(8000), fieldOf(8000)]), 200, undefined],
    ['a request line past every limit together', request(lineOf(1024 * 1024)), 431, /request head is larger than \d+ bytes/],
  ])('%s', async (_name, bytes, status, message) => {
    const { response, statusLines, closedByServer } = await exchange(t.port, bytes);
    expect(response.status).toBe(status);
    expect(statusLines).toHaveLength(1);
    expect(closedByServer).toBe(true);
    if (message) {
      expect(response.body.toString('utf8')).toMatch(message);
      expect(response.body.toString('utf8')).toMatch(/^[^\n]+\(INTERPOOL_ERR_[A-Z_]+\)\n$/);
    }
  });

  it.each([
    ['sent whole', false],
    ['sent one byte per write', true],
  ])('a header flood on a keep-alive connection, after a served request, is named as the field limit (%s)', async (_how, oneByteWrites) => {
    const { response, statusLines } = await exchange(t.port, `GET / HTTP/1.1\r\nHost: a\r\n\r\n${request('GET / HTTP/1.1', fields(200))}`, { oneByteWrites });
    expect(statusLines).toEqual(['HTTP/1.1 200 OK', 'HTTP/1.1 431 Request Header Fields Too Large']);
    expect(response.raw.toString('latin1')).toMatch(/more than --limit-request-fields \(100\) header fields \(INTERPOOL_ERR_TOO_MANY_HEADERS\)\n$/);
  });

  it('the 100 fields all reach the app', async () => {
    const { response } = await exchange(t.port, request('GET / HTTP/1.1', fields(98)));
    const environ = JSON.parse(response.body.toString('utf8')) as Record<string, string>;
    expect(environ.HTTP_X_FIELD_97).toBe('v');
  });
});

describe('limits set by option, and --body-limit', () => {
  const post = (headers: string[], body: string) => `POST /?how=read-all HTTP/1.1\r\nHost: a\r\n${headers.map((h) => `${h}\r\n`).join('')}Connection: close\r\n\r\n${body}`;
  const chunked = (sizes: number[]) => `${sizes.map((size) => `${size.toString(16)}\r\n${'x'.repeat(size)}\r\n`).join('')}0\r\n\r\n`;

  it.each([
    ['--limit-request-line 100', request(lineOf(101)), 414, /--limit-request-line \(100 bytes\)/],
    ['--limit-request-fields 5', request('GET / HTTP/1.1', fields(4)), 431, /--limit-request-fields \(5\)/],
    ['--limit-request-fields 5, with 20 fields', request('GET / HTTP/1.1', fields(18)), 431, /--limit-request-fields \(5\)/],
    ['--limit-request-field-size 64', request('GET / HTTP/1.1', [fieldOf(63)]), 431, /--limit-request-field-size \(64 bytes\)/],
    ['Content-Length over --body-limit', post(['Content-Length: 1025'], 'x'.repeat(1025)), 413, /--body-limit \(1024 bytes\)/],
    ['chunked body over --body-limit', post(['Transfer-Encoding: chunked'], chunked([600, 600])), 413, /--body-limit \(1024 bytes\)/],
    ['chunked body over --body-limit, one large chunk', post(['Transfer-Encoding: chunked'], chunked([2000])), 413, /--body-limit \(1024 bytes\)/],
  ])('%s', async (_name, bytes, status, message) => {
    const { response, statusLines } = await exchange(small.port, bytes);
    expect(response.status).toBe(status);
    expect(statusLines).toHaveLength(1);
    expect(response.body.toString('utf8')).toMatch(message);
    expect(response.body.toString('utf8')).toMatch(/^[^\n]+\(INTERPOOL_ERR_[A-Z_]+\)\n$/);
  });

  it.each([
    ['a body of exactly --body-limit', post(['Content-Length: 1024'], 'x'.repeat(1024))],
    ['a chunked body of exactly --body-limit', post(['Transfer-Encoding: chunked'], chunked([512, 512]))],
  ])('%s is served', async (_name, bytes) => {
    const { response } = await exchange(small.port, bytes);
    expect(response.status).toBe(200);
  });

  it('the server keeps serving after the refusals', async () => {
    const { response } = await exchange(small.port, request('GET /?how=read-all HTTP/1.1'));
    expect(response.status).toBe(200);
  });
});
