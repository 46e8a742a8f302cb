// wsgi.input over a real POST body, and wsgi.errors into the server log tagged with the
// app and the worker that wrote it.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rawRequest, startTestServer, waitFor, type TestServer } from './support.ts';

let t: TestServer;

beforeAll(async () => {
  t = await startTestServer(['/input=test/fixtures/apps/input-reader.ts', '/errors=test/fixtures/apps/writes-to-errors.ts', '/close-raises=test/fixtures/apps/close-raises.ts', '--workers', '1']);
});
afterAll(() => t?.close());

const BODY = 'first line\nsecond\n\nlast without newline';

describe('wsgi.input', () => {
  it.each([
    ['read-n', 'read(3), read(4), read(), then read(5) at the end', ['fir', 'st l', 'ine\nsecond\n\nlast without newline', '']],
    ['read-all', 'read() twice', [BODY, '']],
    ['readline', 'readline() past the end', ['first line\n', 'second\n', '\n', 'last without newline']],
    ['readline-n', 'readline(2), readline(100), readline(-1)', ['fi', 'rst line\n', 'second\n']],
    ['readlines', 'readlines()', ['first line\n', 'second\n', '\n', 'last without newline']],
    ['readlines-hint', 'readlines(12) stops once 12 bytes were read', ['first line\n', 'second\n']],
    ['read-zero', 'read(0) and readline(0) read nothing', ['', '', 'first']],
    ['iterate', 'iteration', ['first line\n', 'second\n', '\n', 'last without newline']],
  ])('%s: %s', async (how, _label, expected) => {
    const response = await fetch(`${t.url}/input?how=${how}`, { method: 'POST', body: BODY, headers: { 'content-type': 'text/plain' } });
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual(expected);
  });

  it('keeps every byte of a binary body', async () => {
    const bytes = new Uint8Array(256).map((_, i) => i);
    const response = await fetch(`${t.url}/input?how=read-all`, { method: 'POST', body: bytes });
    const [all] = (await response.json()) as string[];
    expect(Buffer.from(all!, 'latin1')).toEqual(Buffer.from(bytes));
  });

  it('reads a chunked request body, and CONTENT_LENGTH gives its length', async () => {
    const response = await rawRequest(t.port,
      'POST /input?how=read-all HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n7\r\n, world\r\n0\r\n\r\n');
    expect(JSON.parse(response.body.toString())).toEqual(['hello, world', '']);
  });

  it('reads a 2 MiB body whole', async () => {
    const bytes = new Uint8Array(2 * 1024 * 1024).map((_, i) => (i * 7) & 0xff);
    const response = await fetch(`${t.url}/input?how=read-all`, { method: 'POST', body: bytes });
    const [all] = (await response.json()) as string[];
    expect(Buffer.from(all!, 'latin1').equals(Buffer.from(bytes))).toBe(true);
  });

  it('is empty on a GET', async () => {
    expect(await (await fetch(`${t.url}/input?how=read-all`)).json()).toEqual(['', '']);
  });
});

describe('wsgi.errors', () => {
  it('sends each line to the log tagged with app and worker', async () => {
    const response = await fetch(`${t.url}/errors/`);
    expect(await response.text()).toBe('logged\n');
    const lines = await waitFor(() => {
      const found = t.logs.filter((line) => String(line.msg).startsWith('errors line'));
      return found.length >= 5 && found;
    }, 5000, 'wsgi.errors lines in the log');
    expect(lines.map((line) => line.msg)).toEqual([
      'errors line one', 'errors line two', 'errors line three', 'errors line four', 'errors line five, flushed',
    ]);
    const access = await waitFor(() => t.logs.find((line) => line.msg === 'request' && line.path === '/errors/'), 5000, 'the access-log line');
    for (const line of lines) {
      expect(line.app).toBe('/errors');
      expect(typeof line.worker).toBe('number');
      expect(line.worker).toBe(access.worker);
    }
  });

  it('a last line without newline is sent at the end of the request, unflushed', async () => {
    await fetch(`${t.url}/errors/?unflushed=1`);
    const line = await waitFor(() => t.logs.find((l) => l.msg === 'unflushed tail without newline'), 5000, 'the unflushed line');
    expect(line.app).toBe('/errors');
  });

  it('a close() that throws is logged; the response is already whole', async () => {
    const response = await fetch(`${t.url}/close-raises`);
    expect(await response.text()).toBe('complete body\n');
    const line = await waitFor(() => t.logs.find((l) => String(l.msg).includes('close-raises: close() failed')), 5000, 'the close() error');
    expect(line.app).toBe('/close-raises');
  });
});
