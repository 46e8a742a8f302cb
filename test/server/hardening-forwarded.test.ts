// Trusted proxies over real sockets: forwarding headers reach REMOTE_ADDR,
// wsgi.url_scheme and HTTP_HOST only when the peer is in --forwarded-allow-ips; from
// anyone else they arrive as ordinary HTTP_* values and change nothing.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exchange } from './hardening-support.ts';
import { startTestServer, type TestServer } from './support.ts';

let trusting: TestServer;
let distrusting: TestServer;

beforeAll(async () => {
  // The tests connect from 127.0.0.1: trusted by default, untrusted when only 10.9.9.9 is.
  [trusting, distrusting] = await Promise.all([
    startTestServer(['/=test/fixtures/apps/environ-echo.ts', '--workers', '1']),
    startTestServer(['/=test/fixtures/apps/environ-echo.ts', '--workers', '1', '--forwarded-allow-ips', '10.9.9.9']),
  ]);
});
afterAll(() => Promise.all([trusting?.close(), distrusting?.close()]));

const get = (headers: string[]) => `GET /who HTTP/1.1\r\nHost: origin.test:8000\r\n${headers.map((h) => `${h}\r\n`).join('')}Connection: close\r\n\r\n`;

async function environOf(server: TestServer, headers: string[], oneByteWrites = false): Promise<Record<string, string>> {
  const { response } = await exchange(server.port, get(headers), { oneByteWrites });
  expect(response.status).toBe(200);
  return JSON.parse(response.body.toString('utf8')) as Record<string, string>;
}

const spoofs: [string, string[]][] = [
  ['X-Forwarded-For posing as another client', ['X-Forwarded-For: 198.51.100.7']],
  ['X-Forwarded-Proto claiming https', ['X-Forwarded-Proto: https']],
  ['X-Forwarded-Host claiming another host', ['X-Forwarded-Host: bank.example']],
  ['Forwarded claiming all three', ['Forwarded: for=198.51.100.7;proto=https;host=bank.example']],
  ['contradicting schemes (ignored, not refused)', ['X-Forwarded-Proto: https', 'Forwarded: proto=http']],
];

describe.each([['sent whole', false], ['sent one byte per write', true]])('from an untrusted peer (%s)', (_how, oneByteWrites) => {
  it.each(spoofs)('%s: passed through as HTTP_*, REMOTE_ADDR/scheme/host untouched', async (_attack, headers) => {
    const environ = await environOf(distrusting, headers, oneByteWrites);
    expect(environ.REMOTE_ADDR).toBe('127.0.0.1');
    expect(environ['wsgi.url_scheme']).toBe('http');
    expect(environ.HTTP_HOST).toBe('origin.test:8000');
    expect(environ.SERVER_NAME).toBe('origin.test');
    for (const header of headers) {
      const [name, value] = header.split(': ');
      expect(environ[`HTTP_${name!.toUpperCase().replaceAll('-', '_')}`]).toBe(value);
    }
  });
});

describe.each([['sent whole', false], ['sent one byte per write', true]])('from a trusted proxy (%s)', (_how, oneByteWrites) => {
  it('X-Forwarded-For/-Proto/-Host set REMOTE_ADDR, wsgi.url_scheme, HTTP_HOST', async () => {
    const environ = await environOf(trusting, ['X-Forwarded-For: 6.6.6.6, 198.51.100.7', 'X-Forwarded-Proto: https', 'X-Forwarded-Host: app.example'], oneByteWrites);
    expect(environ.REMOTE_ADDR).toBe('198.51.100.7');
    expect(environ['wsgi.url_scheme']).toBe('https');
    expect(environ.HTTP_HOST).toBe('app.example');
    expect(environ.SERVER_NAME).toBe('app.example');
    expect(environ.SERVER_PORT).toBe('443');
    expect(environ.HTTP_X_FORWARDED_FOR).toBe('6.6.6.6, 198.51.100.7');
  });

  it('RFC 7239 Forwarded sets them too', async () => {
    const environ = await environOf(trusting, ['Forwarded: for="[2001:db8::7]:4711";proto=https;host="app.example:8443"'], oneByteWrites);
    expect(environ.REMOTE_ADDR).toBe('2001:db8::7');
    expect(environ.REMOTE_PORT).toBe('4711');
    expect(environ['wsgi.url_scheme']).toBe('https');
    expect(environ.HTTP_HOST).toBe('app.example:8443');
    expect(environ.SERVER_PORT).toBe('8443');
  });

  it.each([
    ['X-Forwarded-Proto https against Forwarded proto=http', ['X-Forwarded-Proto: https', 'Forwarded: proto=http']],
    ['X-Forwarded-Proto https against X-Forwarded-Ssl off', ['X-Forwarded-Proto: https', 'X-Forwarded-Ssl: off']],
    ['a scheme that is neither http nor https', ['X-Forwarded-Proto: javascript']],
  ])('conflicting or invalid scheme headers: 400 (%s)', async (_attack, headers) => {
    const { response } = await exchange(trusting.port, get(headers), { oneByteWrites });
    expect(response.status).toBe(400);
    expect(response.body.toString('utf8')).toMatch(/^bad forwarding headers from a trusted proxy: .+ \(INTERPOOL_ERR_FORWARDED\)\n$/);
    expect(trusting.logs.some((line) => line.path === '/who' && line.worker !== '-' && line.status === 400)).toBe(false);
  });
});
