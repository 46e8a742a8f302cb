// What the client receives: the status line as the app wrote it, the app's headers in
// its order with repeats kept, Content-Length or chunked framing, no body for HEAD, and
// a streamed body that arrives as it is produced.
import { mkdtempSync, rmSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SMALL_BODY_BYTES } from '../../runtime/protocol.ts';
import { fileGate } from './gates.ts';
import { getRequest, headerOf, parseRawResponse, rawRequest, startTestServer, waitFor, type TestServer } from './support.ts';

let t: TestServer;

beforeAll(async () => {
  t = await startTestServer([
    '/cookies=test/fixtures/apps/set-cookies.ts',
    '/shapes=test/fixtures/apps/body-shapes.ts',
    '/slow=test/fixtures/apps/streams-slowly.ts',
    '/head=test/fixtures/apps/head-aware.ts',
    '/echo=test/fixtures/apps/overlap-probe.ts',
    '/bytes=apps/echo.ts',
    '--workers', '1',
  ]);
});
afterAll(() => t?.close());

describe('status line and headers', () => {
  it('keeps the reason phrase and the header order, repeated Set-Cookie included', async () => {
    const response = await rawRequest(t.port, getRequest('/cookies'));
    expect(response.statusLine).toBe('HTTP/1.1 201 Made It Myself');
    const appHeaders = response.headers.filter(([name]) => /^(x-|set-cookie|content-type)/i.test(name));
    expect(appHeaders).toEqual([
      ['X-First', 'one'],
      ['Set-Cookie', 'a=1; Path=/'],
      ['X-Middle', 'two'],
      ['Set-Cookie', 'b=2; HttpOnly'],
      ['Content-Type', 'text/plain; charset=utf-8'],
      ['Set-Cookie', 'c=3'],
      ['X-Last', 'three'],
    ]);
    expect(response.body.toString()).toBe('cookies set\n');
  });

  it('fetch sees every Set-Cookie', async () => {
    const response = await fetch(`${t.url}/cookies`);
    expect(response.headers.getSetCookie()).toEqual(['a=1; Path=/', 'b=2; HttpOnly', 'c=3']);
  });
});

describe('body framing', () => {
  it.each([
    // shape, framing the client sees
    ['list', 'length'],
    ['list-with-length', 'length'],
    ['bytes', 'length'],
    ['promise', 'length'],
    ['write', 'chunked'],
    ['generator', 'chunked'],
    ['async-generator', 'chunked'],
    ['generator-with-length', 'length'],
  ])('%s → body "hello, world" with %s framing', async (shape, framing) => {
    const response = await rawRequest(t.port, getRequest(`/shapes?shape=${shape}`));
    expect(response.status).toBe(200);
    expect(response.body.toString()).toBe('hello, world\n');
    expect(response.truncated).toBe(false);
    if (framing === 'length') {
      expect(headerOf(response, 'content-length')).toBe('13');
      expect(response.chunked).toBe(false);
    } else {
      expect(response.chunked).toBe(true);
      expect(headerOf(response, 'content-length')).toBeUndefined();
    }
  });

  it('an app-given Content-Length is sent once, as given', async () => {
    const response = await rawRequest(t.port, getRequest('/shapes?shape=list-with-length'));
    expect(response.headers.filter(([name]) => name.toLowerCase() === 'content-length')).toEqual([['Content-Length', '13']]);
  });

  it('an empty list gives an empty body; a 204 gets no Content-Length', async () => {
    const response = await rawRequest(t.port, getRequest('/shapes?shape=empty-list'));
    expect(response.statusLine).toBe('HTTP/1.1 204 No Content');
    expect(response.body.length).toBe(0);
    expect(headerOf(response, 'content-length')).toBeUndefined();
  });

  // Before, an app's Content-Length went out with the 204, which RFC 9110 §8.6 forbids.
  it('a 204 never carries a Content-Length, not even the app\'s own', async () => {
    const response = await rawRequest(t.port, getRequest('/shapes?shape=no-content-with-length'));
    expect(response.statusLine).toBe('HTTP/1.1 204 No Content');
    expect(headerOf(response, 'content-length')).toBeUndefined();
  });

  // Bug (server/response-sender.ts, fixed): an app answering HEAD with its GET's
  // Content-Length and no body got a 500 for a length mismatch.
  it.each(['', '?how=stream'])('HEAD answered with the GET\'s Content-Length and no body (%s) is fine', async (query) => {
    const head = await rawRequest(t.port, getRequest(`/head${query}`, [], 'HEAD'));
    expect(head.status).toBe(200);
    expect(headerOf(head, 'content-length')).toBe('13');
    const get = await rawRequest(t.port, getRequest(`/head${query}`));
    expect(get.body.toString()).toBe('the GET body\n');
  });

  it('an empty generator gives an empty, complete body', async () => {
    const response = await rawRequest(t.port, getRequest('/shapes?shape=empty-generator'));
    expect(response.status).toBe(200);
    expect(response.body.length).toBe(0);
    expect(response.truncated).toBe(false);
  });

  it.each(['list', 'generator', 'list-with-length'])('HEAD gets the headers and no body (%s)', async (shape) => {
    const response = await rawRequest(t.port, getRequest(`/shapes?shape=${shape}`, [], 'HEAD'));
    expect(response.status).toBe(200);
    expect(headerOf(response, 'content-type')).toBe('text/plain; charset=utf-8');
    const afterHead = response.raw.subarray(response.raw.indexOf('\r\n\r\n') + 4);
    expect(afterHead.length).toBe(0);
  });

  it('keep-alive: two requests on one connection both complete', async () => {
    const both = getRequest('/shapes?shape=generator').replace('Connection: close', 'Connection: keep-alive') + getRequest('/shapes?shape=list');
    const { raw } = await rawRequest(t.port, both);
    expect(raw.toString('latin1').match(/HTTP\/1\.1 200 OK/g)).toHaveLength(2);
    // The first response is chunked ("hello, " and "world\n"): the second starts after its last chunk.
    const first = parseRawResponse(raw);
    expect(first.chunked).toBe(true);
    expect(first.truncated).toBe(false);
    expect(first.body.toString()).toBe('hello, world\n');
    const second = parseRawResponse(raw.subarray(raw.indexOf('\r\n0\r\n\r\n') + 7));
    expect(second.statusLine).toBe('HTTP/1.1 200 OK');
    expect(headerOf(second, 'content-length')).toBe('13');
    expect(second.body.toString()).toBe('hello, world\n');
  });
});

describe('bodies and requests of other kinds', () => {
  it('strings are sent as UTF-8 and Content-Length counts bytes', async () => {
    const response = await rawRequest(t.port, getRequest('/shapes?shape=unicode'));
    const text = 'h\u00e9llo \u20ac \u{1f600}\n';
    expect(response.body.toString('utf8')).toBe(text);
    expect(headerOf(response, 'content-length')).toBe(String(Buffer.byteLength(text)));
  });

  // A whole body up to SMALL_BODY_BYTES crosses to the main thread as a latin-1 string,
  // a larger one as bytes (protocol.ts WholeBody): every byte value, on both sides of the limit.
  it.each([1, 256, SMALL_BODY_BYTES, SMALL_BODY_BYTES + 1])('a whole body of %i bytes arrives byte for byte', async (size) => {
    const body = new Uint8Array(size).map((_, i) => (i * 31 + 7) & 0xff);
    const response = await fetch(`${t.url}/bytes`, { method: 'POST', body });
    expect(response.headers.get('content-length')).toBe(String(size));
    expect(Buffer.compare(new Uint8Array(await response.arrayBuffer()), body)).toBe(0);
  });

  it('a large streamed body arrives whole', async () => {
    const bytes = 3 * 1024 * 1024 + 17;
    const response = await fetch(`${t.url}/shapes?shape=large&bytes=${bytes}`);
    const body = new Uint8Array(await response.arrayBuffer());
    expect(body.length).toBe(bytes);
    expect(body.every((byte) => byte === 0x61)).toBe(true);
  });

  it('an HTTP/1.0 client gets a streamed body without chunked framing, ended by close', async () => {
    const response = await rawRequest(t.port, 'GET /shapes?shape=generator HTTP/1.0\r\nHost: localhost\r\n\r\n');
    expect(response.statusLine).toMatch(/^HTTP\/1\.[01] 200 OK$/);
    expect(response.chunked).toBe(false);
    expect(response.body.toString()).toBe('hello, world\n');
  });

  it('an absolute-form request target is split like an origin-form one', async () => {
    const response = await rawRequest(t.port, getRequest('http://localhost/shapes?shape=list'));
    expect(response.status).toBe(200);
    expect(response.body.toString()).toBe('hello, world\n');
  });

  it('a path no app is mounted at gets 404 from the server', async () => {
    const response = await rawRequest(t.port, getRequest('/nothing/here'));
    expect(response.status).toBe(404);
    expect(response.body.toString()).toMatch(/INTERPOOL_ERR_NOT_FOUND/);
  });

  it('Expect: 100-continue gets its 100 before sending the body, and then the response', async () => {
    const socket = connect({ host: '127.0.0.1', port: t.port });
    let received = Buffer.alloc(0);
    const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
    const interim = new Promise<string>((resolve) => {
      socket.on('data', (data: Buffer) => {
        received = Buffer.concat([received, data]);
        const end = received.indexOf('\r\n\r\n');
        if (end >= 0) resolve(received.subarray(0, end + 4).toString('latin1'));
      });
    });
    // The head only: the body goes once the server has said to go on.
    socket.write('POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: 2\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n');
    expect(await interim).toBe('HTTP/1.1 100 Continue\r\n\r\n');
    socket.write('hi');
    await closed;
    const response = parseRawResponse(received.subarray(received.indexOf('\r\n\r\n') + 4));
    expect(response.statusLine).toBe('HTTP/1.1 200 OK');
    expect((JSON.parse(response.body.toString()) as { body: string }).body).toBe('hi');
  });
});

describe('access log', () => {
  it('one line per request: method, path, status, bytes, ms, app, worker', async () => {
    await rawRequest(t.port, getRequest('/cookies/access-log?x=1'));
    const line = await waitFor(() => t.logs.find((l) => l.msg === 'request' && l.path === '/cookies/access-log'), 5000, 'the access line');
    expect(line).toMatchObject({ method: 'GET', path: '/cookies/access-log', status: 201, bytes: 12, app: '/cookies' });
    expect(typeof line.ms).toBe('number');
    expect(typeof line.worker).toBe('number');
    expect(t.logs.filter((l) => l.path === '/cookies/access-log')).toHaveLength(1);
  });

  it('a streamed response logs the bytes it sent', async () => {
    await rawRequest(t.port, getRequest('/shapes?shape=async-generator'));
    const line = await waitFor(() => t.logs.find((l) => l.msg === 'request' && l.path === '/shapes' && l.bytes === 13), 5000, 'the access line');
    expect(line.status).toBe(200);
  });
});

describe('streaming', () => {
  it('the first chunk reaches the client before the next one is produced', async () => {
    // The app makes chunk 1, then the next ones only once the client has received chunk 1
    // and opened the gate: a server that held chunks back would never see it opened.
    const dir = mkdtempSync(join(tmpdir(), 'interpool-streaming-'));
    try {
      const gate = fileGate(dir, 'first-chunk-received');
      let text = '';
      let textAtFirst = '';
      await new Promise<void>((resolve, reject) => {
        httpRequest(`${t.url}/slow?chunks=3&${gate.query}`, (res) => {
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => {
            text += chunk;
            if (textAtFirst !== '' || !text.includes('chunk 1')) return;
            textAtFirst = text;
            gate.open();
          });
          res.on('end', resolve);
          res.on('error', reject);
        }).on('error', reject).end();
      });
      expect(textAtFirst).not.toContain('chunk 2');
      expect(text.match(/chunk \d/g)).toEqual(['chunk 1', 'chunk 2', 'chunk 3']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
