import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { FORBIDDEN_TRAILERS, findRequestFault, findTrailerFault, type RequestHead } from '../../server/request-guard.ts';

const limits = { requestLine: 4094, fields: 100, fieldSize: 8190 };
const head = (overrides: Partial<RequestHead> = {}): RequestHead => ({
  method: 'GET', target: '/', httpVersion: '1.1', rawHeaders: ['Host', 'a'], ...overrides,
});
const withHeaders = (...pairs: string[]): Partial<RequestHead> => ({ rawHeaders: ['Host', 'a', ...pairs] });

describe('findRequestFault: refused', () => {
  it.each([
    ['Host confusion: two Host headers', { rawHeaders: ['Host', 'a', 'host', 'b'] }, 400, /more than one Host header/],
    ['HTTP/1.1 without Host', { rawHeaders: [] }, 400, /without a Host header/],
    ['CL.CL: two Content-Length', withHeaders('Content-Length', '1', 'Content-Length', '1'), 400, /more than one Content-Length/],
    ['two Content-Type', withHeaders('Content-Type', 'a/b', 'CONTENT-TYPE', 'c/d'), 400, /more than one Content-Type/],
    ['two Transfer-Encoding', withHeaders('Transfer-Encoding', 'chunked', 'Transfer-Encoding', 'chunked'), 400, /more than one Transfer-Encoding/],
    ['CL.TE', withHeaders('Content-Length', '5', 'Transfer-Encoding', 'chunked'), 400, /both Content-Length and Transfer-Encoding/],
    ['TE.CL', withHeaders('Transfer-Encoding', 'chunked', 'Content-Length', '5'), 400, /both Content-Length and Transfer-Encoding/],
    ['Content-Length not a number', withHeaders('Content-Length', '1, 1'), 400, /Content-Length is not a number/],
    ['negative Content-Length', withHeaders('Content-Length', '-1'), 400, /Content-Length is not a number/],
    ['TE gzip', withHeaders('Transfer-Encoding', 'gzip'), 400, /Transfer-Encoding "gzip" is not supported/],
    ['TE gzip, chunked', withHeaders('Transfer-Encoding', 'gzip, chunked'), 400, /"gzip, chunked" is not supported/],
    ['TE chunked, chunked', withHeaders('Transfer-Encoding', 'chunked, chunked'), 400, /not supported/],
    ['TE identity', withHeaders('Transfer-Encoding', 'identity'), 400, /not supported/],
    ['TE in HTTP/1.0', { httpVersion: '1.0', rawHeaders: ['Transfer-Encoding', 'chunked'] }, 400, /HTTP\/1\.0/],
    ['* with GET', { target: '*' }, 400, /only for OPTIONS, not GET/],
    ['* with POST', { method: 'POST', target: '*' }, 400, /only for OPTIONS, not POST/],
    ['space in a header name', withHeaders('X A', 'b'), 400, /header name "X A" is not an RFC 9110 token/],
    ['underscore is a token but colon is not', withHeaders('X:A', 'b'), 400, /not an RFC 9110 token/],
    ['empty header name', withHeaders('', 'b'), 400, /not an RFC 9110 token/],
    ['NUL in a value', withHeaders('X-A', 'a\u0000b'), 400, /header X-A holds a control byte/],
    ['CR in a value', withHeaders('X-A', 'a\rb'), 400, /control byte/],
    ['LF in a value', withHeaders('X-A', 'a\nb'), 400, /control byte/],
    ['DEL in a value', withHeaders('X-A', 'a\u007fb'), 400, /control byte/],
    ['control byte in the name is escaped in the message', withHeaders('X\u0001', 'b'), 400, /"X\\x01"/],
    ['space in the target', { target: '/a b' }, 400, /request target/],
    ['absolute-form with userinfo', { target: 'http://user:pw@example.test/a' }, 400, /userinfo/],
    ['absolute-form with an empty host', { target: 'http:///a' }, 400, /names no host/],
    ['absolute-form with a port but no host', { target: 'http://:80/a' }, 400, /names no host/],
    ['HTTP/0.9', { httpVersion: '0.9' }, 505, /HTTP\/0\.9 is not supported/],
    ['HTTP/2.0', { httpVersion: '2.0' }, 505, /HTTP\/2\.0 is not supported/],
    ['request line one byte too long', { target: `/${'a'.repeat(4094 - 'GET  HTTP/1.1'.length)}` }, 414, /--limit-request-line \(4094 bytes\)/],
    ['101 header fields', { rawHeaders: ['Host', 'a', ...Array.from({ length: 100 }, (_, i) => [`X-${i}`, 'v']).flat()] }, 431, /--limit-request-fields \(100\)/],
    // gunicorn counts a field line with its CRLF: 8189 + 2 is over 8190.
    ['a header line of 8189 bytes (8191 with its CRLF)', withHeaders('X-Big', 'v'.repeat(8189 - 'X-Big: '.length)), 431, /header X-Big is longer than --limit-request-field-size \(8190 bytes\)/],
  ])('%s', (_name, overrides, status, message) => {
    const fault = findRequestFault(head(overrides as Partial<RequestHead>), limits);
    expect(fault?.statusCode).toBe(status);
    expect(fault?.message).toMatch(message);
  });
});

describe('findRequestFault: accepted', () => {
  it.each([
    ['a plain GET', {}],
    ['OPTIONS *', { method: 'OPTIONS', target: '*' }],
    ['HTTP/1.0 without Host', { httpVersion: '1.0', rawHeaders: [] }],
    ['chunked, any case, spaces around', withHeaders('Transfer-Encoding', ' Chunked ')],
    ['one Content-Length', withHeaders('Content-Length', '12')],
    ['repeated ordinary headers', withHeaders('Accept', 'a', 'Accept', 'b', 'Cookie', 'x=1', 'Cookie', 'y=2')],
    ['latin-1 (obs-text) and tab in a value', withHeaders('X-Name', 'caf\u00e9\tau lait')],
    ['underscore in a name (a token; environ drops it later)', withHeaders('X_A', 'b')],
    ['absolute-form target', { target: 'http://example.test/a?b' }],
    ['request line exactly at the limit', { target: `/${'a'.repeat(4094 - 'GET / HTTP/1.1'.length)}` }],
    ['exactly 100 header fields', { rawHeaders: ['Host', 'a', ...Array.from({ length: 99 }, (_, i) => [`X-${i}`, 'v']).flat()] }],
    ['a header line of 8188 bytes (8190 with its CRLF)', withHeaders('X-Big', 'v'.repeat(8188 - 'X-Big: '.length))],
  ])('%s', (_name, overrides) => {
    expect(findRequestFault(head(overrides as Partial<RequestHead>), limits)).toBeUndefined();
  });
});

describe('findTrailerFault (RFC 9110 §6.5.1)', () => {
  it.each([
    ['routing: Host', ['Host', 'evil.test']],
    ['routing: X-Forwarded-For', ['X-Forwarded-For', '6.6.6.6']],
    ['routing: Forwarded', ['Forwarded', 'for=6.6.6.6']],
    ['framing: Transfer-Encoding', ['Transfer-Encoding', 'chunked']],
    ['framing: Trailer', ['Trailer', 'X-A']],
    ['connection control: Connection', ['Connection', 'close']],
    ['authentication: Authorization', ['Authorization', 'Bearer x']],
    ['credentials: Cookie', ['Cookie', 'a=1']],
    ['request modifier: Range', ['Range', 'bytes=0-1']],
    ['request modifier: If-None-Match', ['If-None-Match', '"x"']],
    ['content format: Content-Type', ['Content-Type', 'text/plain']],
    ['content format: Content-Encoding', ['Content-Encoding', 'gzip']],
    ['any case', ['hOsT', 'evil.test']],
    ['after an allowed field', ['X-Checksum', 'abc', 'Authorization', 'x']],
  ])('refused: %s', (_name, trailers) => {
    const fault = findTrailerFault(trailers);
    expect(fault?.statusCode).toBe(400);
    expect(fault?.code).toBe('INTERPOOL_ERR_FORBIDDEN_TRAILER');
    expect(fault?.message).toContain(trailers.at(-2)!);
  });

  it.each([
    ['no trailer section', []],
    ['a checksum', ['X-Checksum', 'abc']],
    ['Server-Timing', ['Server-Timing', 'db;dur=53']],
    ['repeated allowed fields', ['X-A', '1', 'X-A', '2']],
  ])('accepted: %s', (_name, trailers) => {
    expect(findTrailerFault(trailers)).toBeUndefined();
  });

  it('every forbidden field is listed in docs/errors.md', () => {
    const doc = readFileSync('docs/errors.md', 'utf8');
    const listed = /forbidden trailer fields: ([^.]+)\./i.exec(doc)?.[1] ?? '';
    const names = new Set(listed.split(',').map((name) => name.trim().replaceAll('`', '').toLowerCase()));
    expect([...FORBIDDEN_TRAILERS].filter((name) => !names.has(name))).toEqual([]);
    expect([...names].filter((name) => !FORBIDDEN_TRAILERS.has(name))).toEqual([]);
  });
});
