// PEP 3333 for Python apps on each Python engine (Pyodide, and the native engine on each
// CPython it is built for), over real sockets: environ, wsgi.input,
// wsgi.errors, start_response/exc_info, write(), close(), wsgi.file_wrapper, streaming,
// and the type checks on what the app hands back. Every well-behaved fixture is also
// served under /validated, wrapped in wsgiref.validate.validator (warnings as errors).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { engineTitle, pythonEngines } from './python-engines.ts';
import { getRequest, rawRequest, startTestServer, waitFor, type TestServer } from './support.ts';

const FIXTURES = 'test/fixtures/apps';
for (const engine of pythonEngines()) {
  describe.skipIf(engine.skip !== undefined)(`on ${engineTitle(engine)}`, () => {
    let t: TestServer;
    // Gate files for /stream, on --python-path so that the app (Pyodide too) sees them.
    let gates: string;

    beforeAll(async () => {
      gates = mkdtempSync(join(tmpdir(), 'interpool-contract-gates-'));
      t = await startTestServer([
        `/environ=${FIXTURES}/environ-echo.py`,
        `/input=${FIXTURES}/input-reader.py`,
        `/errors=${FIXTURES}/writes-to-errors.py`,
        `/write=${FIXTURES}/uses-write.py`,
        `/kept=${FIXTURES}/keeps-write.py`,
        `/file=${FIXTURES}/file-wrapper.py`,
        `/close=${FIXTURES}/records-close.py`,
        `/bad=${FIXTURES}/bad-responses.py`,
        `/exc=${FIXTURES}/exc-info.py`,
        `/raises=${FIXTURES}/raises-before-start.py`,
        `/stream=${FIXTURES}/streams-slowly.py`,
        '--workers', '1', '--python-path', gates, ...engine.args,
      ]);
    }, 120_000);
    afterAll(async () => {
      await t?.close();
      if (gates) rmSync(gates, { recursive: true, force: true });
    });

    /** Log lines of the validator failing (its checks raise AssertionError or WSGIWarning). */
    const validatorFailures = () => t.logs.filter((l) => /AssertionError|WSGIWarning/.test(`${String(l.msg)} ${String(l.detail ?? '')}`));

    const post = (path: string, body: string, type = 'text/plain') => fetch(`${t.url}${path}`, { method: 'POST', body, headers: { 'content-type': type } });

    describe.each([
      ['plain', ''],
      ['under wsgiref.validate', '/validated'],
    ])('Python contract (%s)', (_name, validated) => {
      it('environ holds the CGI variables and the wsgi.* keys', async () => {
        const response = await fetch(`${t.url}/environ${validated}/some%2Fpath?x=1&y=%20`, { headers: { 'x-custom': 'abc' } });
        expect(response.status).toBe(200);
        const environ = (await response.json()) as Record<string, unknown>;
        expect(environ).toMatchObject({
          REQUEST_METHOD: 'GET',
          SCRIPT_NAME: `/environ${validated}`,
          PATH_INFO: '/some/path',
          QUERY_STRING: 'x=1&y=%20',
          // As sent: an encoded slash is told from a real one only here.
          REQUEST_URI: `/environ${validated}/some%2Fpath?x=1&y=%20`,
          RAW_URI: `/environ${validated}/some%2Fpath?x=1&y=%20`,
          SERVER_PROTOCOL: 'HTTP/1.1',
          REMOTE_ADDR: '127.0.0.1',
          HTTP_X_CUSTOM: 'abc',
          'wsgi.version': [1, 0],
          'wsgi.url_scheme': 'http',
          'wsgi.multithread': false,
          // One interpreter (--workers 1), one process: nothing else runs the app meanwhile.
          'wsgi.multiprocess': false,
          'wsgi.run_once': false,
        });
        expect(environ['wsgi.input']).toMatch(/^<\w+>$/);
        expect(environ['wsgi.errors']).toMatch(/^<\w+>$/);
        expect(environ['wsgi.file_wrapper']).toBe('<type>');
        for (const key of ['SERVER_NAME', 'SERVER_PORT', 'REMOTE_PORT']) expect(typeof environ[key]).toBe('string');
        // A GET without a body: absent, as under gunicorn (PEP 3333: "may be empty or absent").
        expect(environ).not.toHaveProperty('CONTENT_TYPE');
        expect(environ).not.toHaveProperty('CONTENT_LENGTH');
      });

      it('wsgi.input: read(n) in pieces, readline, readline(n), readlines and iteration', async () => {
        const body = 'first line\nsecond\nlast';
        const read = async (how: string) => (await (await post(`/input${validated}?${how}`, body)).json()) as string[];
        expect(await read('read-length')).toEqual([body]);
        expect((await read('read-by-3')).join('')).toBe(body);
        expect(await read('read-by-3')).toHaveLength(Math.ceil(body.length / 3));
        expect(await read('readline')).toEqual(['first line\n', 'second\n']);
        expect(await read('readline-2')).toEqual(['fi', 'rs']);
        expect(await read('readlines')).toEqual(['first line\n', 'second\n', 'last']);
        expect(await read('iterate')).toEqual(['first line\n', 'second\n', 'last']);
      });

      // Before: Fastify answered PURGE, PROPFIND and the like 404 itself, and read no body for GET.
      it('every method Node parses reaches the app, each with its body (a GET\'s and a chunked one included)', async () => {
        const send = async (method: string, framing: string, body: string) => {
          const response = await rawRequest(t.port, `${method} /input${validated}?read-length HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: text/plain\r\n${framing}\r\n${body}`);
          expect(response.status, method).toBe(200);
          return JSON.parse(response.body.toString('latin1')) as string[];
        };
        // wsgiref.validate warns of any method outside RFC 7231's and PATCH.
        for (const method of validated ? ['GET', 'TRACE'] : ['GET', 'TRACE', 'PURGE', 'PROPFIND', 'MKCOL', 'REPORT', 'LOCK', 'SEARCH']) {
          expect(await send(method, 'Content-Length: 5\r\n', 'hello'), method).toEqual(['hello']);
        }
        expect(await send('GET', 'Transfer-Encoding: chunked\r\n', '3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n')).toEqual(['abcde']);
      });

      it('wsgi.errors goes to the server log, a line per line, tagged with the app', async () => {
        const response = await fetch(`${t.url}/errors${validated}`);
        expect(await response.text()).toBe('logged\n');
        const lines = await waitFor(() => {
          const found = t.logs.filter((l) => l.app === '/errors' && l.stream === 'wsgi.errors').map((l) => l.msg);
          return found.length >= 4 * (validated ? 2 : 1) && found;
        }, 5000, 'the wsgi.errors lines');
        expect(lines.slice(0, 4)).toEqual(['py-errors first line', 'py-errors second line', 'py-errors from writelines', 'py-errors unterminated']);
      });

      // Before, a kept write() wrote into whatever request the interpreter served next: another client's response.
      it('a write() kept from an ended request raises in the app; nothing reaches the next request\'s client', async () => {
        expect(await (await fetch(`${t.url}/kept/first`)).text()).toBe('first');
        const body = await (await fetch(`${t.url}/kept/second`)).text();
        expect(body).toBe('RuntimeError: write() of a request that has ended: start_response and write belong to their own request');
      });

      it('write() sends its data before the returned body', async () => {
        expect(await (await fetch(`${t.url}/write${validated}`)).text()).toBe('written, then returned\n');
      });

      it('wsgi.file_wrapper streams a file-like object and closes it', async () => {
        const before = Number(await (await fetch(`${t.url}/file${validated}?closed`)).text());
        expect(await (await fetch(`${t.url}/file${validated}`)).text()).toBe('0123456789abcdef\n');
        expect(Number(await (await fetch(`${t.url}/file${validated}?closed`)).text())).toBe(before + 1);
      });

      it('close() is called after a complete response and after an error mid-iteration', async () => {
        expect(await (await fetch(`${t.url}/close${validated}?ok`)).text()).toBe('chunk 0\nchunk 1\n');
        const aborted = await rawRequest(t.port, getRequest(`/close${validated}?raise-mid`));
        expect(aborted.status).toBe(200);
        expect(aborted.truncated).toBe(true);
        const failed = await rawRequest(t.port, getRequest(`/close${validated}?raise-first`));
        expect(failed.status).toBe(500);
        const closes = (await (await fetch(`${t.url}/close${validated}?closes`)).json()) as string[];
        expect(closes.slice(-3)).toEqual(['ok', 'raise-mid', 'raise-first']);
      });

      it('a generator streams each chunk as it is made', async () => {
        // Chunk 1 is made only once the client has chunk 0 and opens the gate.
        const gate = join(gates, `stream${validated.replace('/', '-')}`);
        const response = await fetch(`${t.url}/stream${validated}?gate=${encodeURIComponent(gate)}`);
        const reader = response.body!.getReader();
        const first = await reader.read();
        expect(Buffer.from(first.value!).toString()).toMatch(/^[\d.]+ chunk 0\n$/);
        writeFileSync(gate, '');
        let rest = '';
        for (let chunk = await reader.read(); !chunk.done; chunk = await reader.read()) rest += Buffer.from(chunk.value).toString();
        expect(rest).toMatch(/chunk 1\n.*chunk 2\n$/s);
      });

      it('with exc_info before headers were sent, the new status replaces the old', async () => {
        const response = await rawRequest(t.port, getRequest(`/exc${validated}/before`));
        expect(response.statusLine).toBe('HTTP/1.1 500 Oops');
        expect(response.body.toString()).toBe('sorry\n');
      });

      it('with exc_info after headers were sent, the error is raised again and the response aborted', async () => {
        const response = await rawRequest(t.port, getRequest(`/exc${validated}/after`));
        expect(response.statusLine).toBe('HTTP/1.1 200 OK');
        expect(response.body.toString()).toBe('first chunk\n');
        expect(response.truncated).toBe(true);
        expect(response.raw.toString()).not.toContain('never sent');
      });
    });

    describe('Python errors', () => {
      it('an app raising before start_response gets 500; the traceback is logged, not sent', async () => {
        const response = await rawRequest(t.port, getRequest('/raises'));
        expect(response.status).toBe(500);
        expect(response.body.toString()).not.toContain('secret detail');
        const line = await waitFor(() => t.logs.find((l) => l.app === '/raises' && l.status === 500), 5000, 'the error line');
        expect(String(line.detail)).toMatch(/Traceback[\s\S]*raises-before-start\.py[\s\S]*LookupError: raises-before-start: secret detail/);
      });

      it.each([
        ['/bytes-status', /TypeError: status must be a native str like '200 OK', got bytes b'200 OK'/],
        ['/bytes-header', /TypeError: header name must be a native str, got bytes b'Content-Type'/],
        ['/int-header-value', /TypeError: value of header 'Content-Length' must be a native str, got int 2/],
        ['/headers-not-list', /TypeError: headers must be a list of \(name, value\) tuples, got dict/],
        ['/str-chunk', /body chunks must be bytes, got str/],
        ['/returns-bytes', /returned a single bytes/],
        ['/no-start-response', /before calling start_response/],
        ['/second-start-response', /RuntimeError: start_response was called a second time without exc_info/],
        ['/crlf-status', /ValueError: status '200 OK\\r\\nX-Injected: 1' contains CR or LF/],
      ])('%s is a 500 with a log line naming the fault', async (path, fault) => {
        const response = await rawRequest(t.port, getRequest(`/bad${path}`));
        expect(response.status).toBe(500);
        const line = await waitFor(() => t.logs.find((l) => l.app === '/bad' && l.path === `/bad${path}` && l.status === 500), 5000, 'the error line');
        expect(`${String(line.msg)} ${String(line.detail ?? '')} ${String(line.fault ?? '')}`).toMatch(fault);
      });

      it('write() of a str raises a TypeError the app can catch (as under gunicorn and mod_wsgi)', async () => {
        const response = await rawRequest(t.port, getRequest('/bad/write-str-caught'));
        expect(response.status).toBe(200);
        expect(response.body.toString()).toMatch(/^caught TypeError: body chunks must be bytes, got str/);
      });

      it('a client that leaves mid-stream stops the iteration, and close() is still called', async () => {
        const socket = connect({ host: t.host, port: t.port });
        await new Promise<void>((resolve) => socket.once('connect', resolve));
        socket.write(getRequest('/close?slow'));
        await new Promise<void>((resolve) => socket.once('data', () => resolve()));
        socket.destroy();
        await waitFor(async () => {
          const closes = (await (await fetch(`${t.url}/close?closes`)).json()) as string[];
          return closes.includes('slow');
        }, 10_000, 'close() of the abandoned stream');
      });

      it('no validated request tripped wsgiref.validate', () => {
        expect(validatorFailures()).toEqual([]);
      });
    });
  });
}
