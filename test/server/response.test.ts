// What the client receives: the status line as the app wrote it, the app's headers in
// its order with repeats kept, Content-Length or chunked framing, no body for HEAD, and
// a streamed body that arrives as it is produced.
import { request as httpRequest } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getRequest, headerOf, rawRequest, startTestServer, type TestServer } from './support.ts';

let t: TestServer;

beforeAll(async () => {
  t = await startTestServer([
    '/cookies=test/fixtures/apps/set-cookies.ts',
    '/shapes=test/fixtures/apps/body-shapes.ts',
    '/slow=test/fixtures/apps/streams-slowly.ts',
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

  it('an empty list gives an empty body', async () => {
    const response = await rawRequest(t.port, getRequest('/shapes?shape=empty-list'));
    expect(response.statusLine).toBe('HTTP/1.1 204 No Content');
    expect(response.body.length).toBe(0);
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
