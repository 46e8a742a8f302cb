// What the client receives: the status line as the app wrote it, the app's headers in
// its order with repeats kept, Content-Length or chunked framing, no body for HEAD, and
// a streamed body that arrives as it is produced.
import { request as httpRequest } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getRequest, headerOf, rawRequest, startTestServer, waitFor, type TestServer } from './support.ts';

let t: TestServer;

beforeAll(async () => {
  t = await startTestServer([
    '/cookies=test/fixtures/apps/set-cookies.ts',
    '/shapes=test/fixtures/apps/body-shapes.ts',
    '/slow=test/fixtures/apps/streams-slowly.ts',
    '/head=test/fixtures/apps/head-aware.ts',
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
    const response = await rawRequest(t.port, both);
    const text = response.raw.toString('latin1');
    expect(text.match(/HTTP\/1\.1 200 OK/g)).toHaveLength(2);
    expect(text.match(/hello, world/g)?.length ?? 0).toBeGreaterThanOrEqual(1);
  });
});

describe('bodies and requests of other kinds', () => {
  it('strings are sent as UTF-8 and Content-Length counts bytes', async () => {
    const response = await rawRequest(t.port, getRequest('/shapes?shape=unicode'));
    const text = 'h\u00e9llo \u20ac \u{1f600}\n';
    expect(response.body.toString('utf8')).toBe(text);
    expect(headerOf(response, 'content-length')).toBe(String(Buffer.byteLength(text)));
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

  it('Expect: 100-continue gets its 100 and then the response', async () => {
    const response = await rawRequest(t.port,
      'POST /shapes?shape=list HTTP/1.1\r\nHost: localhost\r\nContent-Length: 2\r\nExpect: 100-continue\r\nConnection: close\r\n\r\nhi');
    expect(response.raw.toString('latin1')).toMatch(/HTTP\/1\.1 200 OK/);
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
  it('the first chunk reaches the client before the last one is produced', async () => {
    const arrivals: { at: number; text: string }[] = [];
    await new Promise<void>((resolve, reject) => {
      httpRequest(`${t.url}/slow?chunks=3&delay=300`, (res) => {
        res.setEncoding('utf8');
        res.on('data', (text: string) => arrivals.push({ at: Date.now(), text }));
        res.on('end', resolve);
        res.on('error', reject);
      }).on('error', reject).end();
    });
    const all = arrivals.map((a) => a.text).join('');
    const produced = [...all.matchAll(/chunk (\d) produced at (\d+)/g)].map((m) => Number(m[2]));
    expect(produced).toHaveLength(3);
    // Chunk 1 was in the client's hands before the app made chunk 3.
    expect(arrivals[0]!.text).toContain('chunk 1');
    expect(arrivals[0]!.at).toBeLessThanOrEqual(produced[2]!);
    // And it did not arrive together with the last one.
    expect(arrivals.length).toBeGreaterThan(1);
  });
});
