// An app that throws or hands back a bad status or bad headers: 500 before headers, an
// aborted connection after, a log line naming the app and the fault — and never the
// stack in the body. The server keeps serving.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getRequest, rawRequest, startTestServer, waitFor, type TestServer } from './support.ts';

let t: TestServer;

beforeAll(async () => {
  t = await startTestServer([
    '/before=test/fixtures/apps/raises-before-start.ts',
    '/mid=test/fixtures/apps/raises-mid-iteration.ts',
    '/status=test/fixtures/apps/bad-status.ts',
    '/crlf=test/fixtures/apps/crlf-header.ts',
    '/hop=test/fixtures/apps/hop-by-hop-header.ts',
    '/ok=test/fixtures/apps/body-shapes.ts',
    '/types=test/fixtures/apps/wrong-types.ts',
    '/length=test/fixtures/apps/length-mismatch.ts',
    '/latin1=test/fixtures/apps/non-latin1-header.ts',
    '--workers', '1',
  ]);
});
afterAll(() => t?.close());

/** The error line the server logged for the request with this path. */
function errorLineFor(path: string): Promise<Record<string, unknown>> {
  return waitFor(() => t.logs.find((line) => line.path === path && line.level === 50), 5000, `the error line for ${path}`);
}

describe('the app throws', () => {
  it('before headers: 500, the stack in the log, not in the body', async () => {
    const response = await rawRequest(t.port, getRequest('/before'));
    expect(response.status).toBe(500);
    const body = response.body.toString();
    expect(body).not.toContain('secret detail');
    expect(body).not.toContain('raises-before-start');
    expect(body).not.toMatch(/\bat .*\.ts:\d+/);
    const line = await errorLineFor('/before');
    expect(line.app).toBe('/before');
    expect(line.code).toBe('INTERPOOL_ERR_APP_RAISED');
    expect(String(line.detail)).toContain('raises-before-start: secret detail 7f3a');
    expect(String(line.detail)).toContain('raises-before-start.ts');
    expect(typeof line.worker).toBe('number');
  });

  it('after headers: the connection is aborted and the stack logged', async () => {
    const response = await rawRequest(t.port, getRequest('/mid'));
    expect(response.status).toBe(200);
    expect(response.chunked).toBe(true);
    expect(response.truncated).toBe(true);
    expect(response.body.toString()).toBe('partial\n');
    expect(response.raw.toString()).not.toContain('secret detail');
    const line = await errorLineFor('/mid');
    expect(line.aborted).toBe(true);
    expect(String(line.detail)).toContain('raises-mid-iteration: secret detail 91bc');
  });
});

// startResponse throws these inside the app (start-response-checks.ts); uncaught, they
// are the app's error: 500, the stack (with the message) in the log.
describe('bad status lines: 500 and a log line naming the fault', () => {
  it.each([
    ['not three digits', '20 OK', /"20 OK" must be a three-digit code/],
    ['four digits', '2000 OK', /"2000 OK" must be a three-digit code/],
    ['letters', 'abc OK', /"abc OK" must be a three-digit code/],
    ['no reason', '200', /"200" must be a three-digit code/],
    ['no space', '200OK', /"200OK" must be a three-digit code/],
    ['1xx', '100 Continue', /"100 Continue": an app's status code must be 200-599/],
    ['CR LF in the reason', '200 OK\r\nX-Evil: 1', /CR or LF/],
    ['LF alone', '200 OK\nX-Evil: 1', /CR or LF/],
    ['empty', '', /"" must be a three-digit code/],
  ])('%s (%j)', async (_label, status, fault) => {
    const path = `/status?status=${encodeURIComponent(status)}`;
    const response = await rawRequest(t.port, getRequest(path));
    expect(response.status).toBe(500);
    expect(response.raw.toString('latin1')).not.toContain('X-Evil');
    expect(response.body.toString()).not.toContain('body of a bad status');
    const line = await errorLineFor('/status');
    t.logs.splice(t.logs.indexOf(line), 1);
    expect(line.app).toBe('/status');
    expect(line.code).toBe('INTERPOOL_ERR_APP_RAISED');
    expect(String(line.detail)).toMatch(/^RangeError: status /);
    expect(String(line.detail)).toMatch(fault);
  });
});

describe('bad headers: 500 and a log line naming the fault', () => {
  it.each([
    ['CR/LF in a header value', '/crlf?in=value', /"X-Injected" contains CR or LF/],
    ['CR/LF in a header name', '/crlf?in=name', /not a valid token/],
    ['Connection', '/hop?name=Connection', /hop-by-hop header "Connection"/],
    ['Keep-Alive', '/hop?name=Keep-Alive', /hop-by-hop header "Keep-Alive"/],
    ['Transfer-Encoding', '/hop?name=Transfer-Encoding', /hop-by-hop header "Transfer-Encoding"/],
    ['Upgrade (any case)', '/hop?name=upGRADE', /hop-by-hop header "upGRADE"/],
    ['TE', '/hop?name=TE', /hop-by-hop header "TE"/],
    ['Trailer', '/hop?name=Trailer', /hop-by-hop header "Trailer"/],
    ['Proxy-Authenticate', '/hop?name=Proxy-Authenticate', /hop-by-hop header "Proxy-Authenticate"/],
  ])('%s', async (_label, path, fault) => {
    const response = await rawRequest(t.port, getRequest(path));
    expect(response.status).toBe(500);
    expect(response.raw.toString('latin1')).not.toContain('evil=1');
    expect(response.body.toString()).not.toMatch(/body (after|with)/);
    const mount = path.slice(0, path.indexOf('?'));
    const line = await errorLineFor(mount);
    t.logs.splice(t.logs.indexOf(line), 1);
    expect(line.app).toBe(mount);
    expect(line.code).toBe('INTERPOOL_ERR_APP_RAISED');
    expect(String(line.detail)).toMatch(/^RangeError: /);
    expect(String(line.detail)).toMatch(fault);
  });
});

describe('values the contract does not allow: 500 and a log line saying what was wrong', () => {
  it.each([
    ['a chunk that is a number', 'number-chunk', 'INTERPOOL_ERR_BAD_RESPONSE', /body chunks must be Uint8Array or string, got number 42/],
    ['a bare string instead of an iterable', 'single-string', 'INTERPOOL_ERR_BAD_RESPONSE', /single string/],
    ['null instead of an iterable', 'null-return', 'INTERPOOL_ERR_BAD_RESPONSE', /must return an iterable/],
    // Thrown by startResponse inside the app (a TypeError or RangeError), uncaught.
    ['a status that is not a string', 'status-number', 'INTERPOOL_ERR_APP_RAISED', /TypeError: status must be a string/],
    ['headers as an object', 'headers-object', 'INTERPOOL_ERR_APP_RAISED', /TypeError: headers must be an array/],
    ['a header of three items', 'header-triple', 'INTERPOOL_ERR_APP_RAISED', /RangeError: headers\[\d\] must be a \[name, value\] pair of 2 items, got 3/],
    ['a header value that is a number', 'header-number-value', 'INTERPOOL_ERR_APP_RAISED', /TypeError: value of header "[^"]+" must be a string, got number/],
    ['body before startResponse', 'body-before-start', 'INTERPOOL_ERR_BAD_RESPONSE', /before calling start_response/],
    ['a rejected promise', 'rejects', 'INTERPOOL_ERR_APP_RAISED', /the app raised/],
    ['a thrown string', 'throws-string', 'INTERPOOL_ERR_APP_RAISED', /the app raised/],
  ])('%s', async (_label, which, code, message) => {
    const response = await rawRequest(t.port, getRequest(`/types?case=${which}`));
    expect(response.status).toBe(500);
    expect(response.body.toString()).toContain(code);
    const line = await errorLineFor('/types');
    t.logs.splice(t.logs.indexOf(line), 1);
    expect(line.app).toBe('/types');
    expect(line.code).toBe(code);
    expect(`${String(line.msg)} ${String(line.detail)}`).toMatch(message);
  });

  // Bug (runtime/wsgi.ts + response-writer.ts, fixed): an app that never called
  // startResponse and returned an empty body reached the main thread with an
  // undefined status and crashed the response sender.
  it('no startResponse at all, with an empty body', async () => {
    const response = await rawRequest(t.port, getRequest('/types?case=no-start-response'));
    expect(response.status).toBe(500);
    const line = await errorLineFor('/types');
    t.logs.splice(t.logs.indexOf(line), 1);
    expect(String(line.msg)).toMatch(/start_response/);
  });

  it('a bad chunk after streaming began aborts the connection', async () => {
    const response = await rawRequest(t.port, getRequest('/types?case=number-chunk-streamed'));
    expect(response.status).toBe(200);
    expect(response.truncated).toBe(true);
    const line = await errorLineFor('/types');
    t.logs.splice(t.logs.indexOf(line), 1);
    expect(line.aborted).toBe(true);
  });

  it.each([
    ['é (latin-1) is sent as its byte', 'caf\u00e9', 200],
    ['€ (not latin-1) is refused', '\u20ac', 500],
    ['NUL is refused', '\u0000', 500],
  ])('header value %s', async (_label, value, status) => {
    const response = await rawRequest(t.port, getRequest(`/latin1?value=${encodeURIComponent(value)}`));
    expect(response.status).toBe(status);
    if (status === 200) expect(response.headers).toContainEqual(['X-Value', value]);
    else await errorLineFor('/latin1').then((line) => t.logs.splice(t.logs.indexOf(line), 1));
  });
});

describe('Content-Length that does not match the body', () => {
  it('a whole body shorter than declared: 500', async () => {
    const response = await rawRequest(t.port, getRequest('/length?how=list&size=5'));
    expect(response.status).toBe(500);
    const line = await errorLineFor('/length');
    t.logs.splice(t.logs.indexOf(line), 1);
    expect(String(line.msg)).toMatch('Content-Length says 10 but the body has 5 bytes');
  });

  // The declared length is a promise to the client: the extra bytes are not sent.
  it.each(['list', 'stream'])('a body (%s) longer than declared is cut at the declared length, with a warning', async (how) => {
    const response = await rawRequest(t.port, getRequest(`/length?how=${how}&size=15`));
    expect(response.status).toBe(200);
    expect(response.body.toString()).toBe('x'.repeat(10));
    expect(response.chunked).toBe(false);
    expect(response.truncated).toBe(false);
    const warning = await waitFor(() => t.logs.find((line) => line.path === '/length' && line.level === 40), 5000, 'the warning');
    t.logs.splice(t.logs.indexOf(warning), 1);
    expect(String(warning.msg)).toBe('the app sent more than its Content-Length of 10 bytes; the body was cut at 10');
  });

  it('a streamed body shorter than declared aborts the connection', async () => {
    const response = await rawRequest(t.port, getRequest('/length?how=stream&size=5'));
    expect(response.status).toBe(200);
    expect(response.truncated).toBe(true);
    const line = await errorLineFor('/length');
    t.logs.splice(t.logs.indexOf(line), 1);
    expect(line.aborted).toBe(true);
  });

  it.each(['-1', 'ten', '1e3'])('a Content-Length of %j is refused: 500', async (length) => {
    const response = await rawRequest(t.port, getRequest(`/length?how=list&length=${length}`));
    expect(response.status).toBe(500);
    const line = await errorLineFor('/length');
    t.logs.splice(t.logs.indexOf(line), 1);
    expect(String(line.detail)).toMatch(/^RangeError: Content-Length must be a non-negative integer/);
  });
});

it('the server and every app keep serving after all of the above', async () => {
  const response = await rawRequest(t.port, getRequest('/ok?shape=generator'));
  expect(response.body.toString()).toBe('hello, world\n');
  const status = await rawRequest(t.port, getRequest(`/status?status=${encodeURIComponent('202 Fine Now')}`));
  expect(status.statusLine).toBe('HTTP/1.1 202 Fine Now');
});
