// What start_response checks (docs/python.md, "What start_response checks"), one case
// per rule, against real servers: the Python adapter (on each Python engine built here)
// and the JS one raise inside the app, where the app can catch the error and still
// answer, and the main thread's rules (server/response-rules.ts, the last line of
// defence) reject exactly the same statuses and headers. Also: exc_info's replace and
// re-raise, Content-Length kept as a promise, the wsgi.* flags, wsgi.file_wrapper's
// fileno() path and close(), and interpool.RequestTimeout at --timeout.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findHeaderFault, parseStatusLine } from '../../server/response-rules.ts';
import { PYODIDE_TESTED, engineTitle, pythonEngines } from './python-engines.ts';
import { getRequest, headerOf, rawRequest, startTestServer, waitFor, type TestServer } from './support.ts';

const PY_APP = 'test/fixtures/apps/reports-start-response-errors.py';
const JS_APP = 'test/fixtures/apps/reports-start-response-errors.ts';

type Header = [string, string];
interface Verdict { raised: string | null; message?: string }

/** A rule on the contents of status and headers: all three sides judge it. */
interface ContentCase {
  rule: string;
  status: string;
  headers: Header[];
  /** What Python raises and JS throws; null: accepted. */
  py: string | null;
  js: string | null;
  /** The message names the fault and shows the value. */
  message?: RegExp;
}

const ok = (rule: string, status: string, headers: Header[]): ContentCase => ({ rule, status, headers, py: null, js: null });
const bad = (rule: string, status: string, headers: Header[], py: string, message: RegExp, js = 'RangeError'): ContentCase =>
  ({ rule, status, headers, py, js, message });
const TEXT: Header = ['Content-Type', 'text/plain'];

const CONTENT_CASES: ContentCase[] = [
  ok('a plain status and header', '200 OK', [TEXT]),
  ok('a latin-1 reason phrase and value, a tab in a value', '299 Caf\u00e9', [['X-Note', 'caf\u00e9\tau lait']]),
  ok('an empty header list', '204 No Content', []),
  ok('a numeric Content-Length', '200 OK', [['Content-Length', '0']]),
  bad('status: three digits', '20 OK', [], 'ValueError', /'20 OK'.*three-digit code/),
  bad('status: a space after the code', '200OK', [], 'ValueError', /'200OK'.*three-digit code, a space/),
  bad('status: digits first', 'OK 200', [], 'ValueError', /'OK 200'/),
  bad('status: 200-599 (1xx)', '100 Continue', [], 'ValueError', /'100 Continue'.*200-599/),
  bad('status: 200-599 (600)', '600 Beyond', [], 'ValueError', /'600 Beyond'.*200-599/),
  bad('status: no CR or LF', '200 OK\r\nSet-Cookie: a=1', [], 'ValueError', /CR or LF \(header injection\)/),
  bad('status: no control characters', '200 O\u0000K', [], 'ValueError', /control character/),
  bad('status: latin-1', '200 \u20ac', [], 'UnicodeEncodeError', /'200 \u20ac'.*not latin-1/),
  bad('header name: not empty', '200 OK', [['', 'x']], 'ValueError', /header name ''.*not a valid token/),
  bad('header name: no spaces', '200 OK', [['X Bad', 'x']], 'ValueError', /'X Bad'.*not a valid token/),
  bad('header name: a token (no colon)', '200 OK', [['X-Bad:', 'x']], 'ValueError', /'X-Bad:'.*not a valid token/),
  bad('header name: no control characters', '200 OK', [['X\u0001', 'x']], 'ValueError', /not a valid token/),
  bad('header name: latin-1', '200 OK', [['X-\u20ac', 'x']], 'UnicodeEncodeError', /header name 'X-\u20ac' is not latin-1/),
  bad('header name: a token (latin-1 letters are not)', '200 OK', [['X-\u00e9', 'x']], 'ValueError', /not a valid token/),
  bad('hop-by-hop: Connection', '200 OK', [['Connection', 'close']], 'ValueError', /hop-by-hop header 'Connection'/),
  bad('hop-by-hop: Transfer-Encoding', '200 OK', [['transfer-encoding', 'chunked']], 'ValueError', /hop-by-hop header 'transfer-encoding'/),
  bad('header value: no CR or LF', '200 OK', [['X-A', 'a\r\nSet-Cookie: x=1']], 'ValueError', /'X-A' contains CR or LF \(header injection\): 'a\\r\\nSet-Cookie: x=1'/),
  bad('header value: no bare LF', '200 OK', [['X-A', 'a\nb']], 'ValueError', /CR or LF/),
  bad('header value: no control characters', '200 OK', [['X-A', 'a\u0000b']], 'ValueError', /'X-A' contains a control character/),
  bad('header value: latin-1', '200 OK', [['X-A', '\u20ac5']], 'UnicodeEncodeError', /value of header 'X-A' '\u20ac5' is not latin-1/),
  bad('Content-Length: a non-negative integer', '200 OK', [['Content-Length', '12abc']], 'ValueError', /Content-Length.*'12abc'/),
];

/** A rule on the types of the arguments: Python and JS only (the main thread gets strings). */
interface TypeCase {
  rule: string;
  /** A Python literal: (status, headers[, exc_info]). */
  py: string;
  pyRaised: string;
  /** The JSON case for the JS app ({"$bytes": s} is a Uint8Array), when JS has a twin. */
  js?: unknown[];
  jsRaised?: string;
  message: RegExp;
}

const TYPE_CASES: TypeCase[] = [
  { rule: 'status: a native str (bytes)', py: '(b"200 OK", [])', pyRaised: 'TypeError', js: [{ $bytes: '200 OK' }, []], jsRaised: 'TypeError', message: /status must be a (native str|string).*(bytes b'200 OK'|Uint8Array)/ },
  { rule: 'status: a native str (int)', py: '(200, [])', pyRaised: 'TypeError', js: [200, []], jsRaised: 'TypeError', message: /status must be a (native str|string).*(int|number) 200/ },
  { rule: 'headers: a list (dict)', py: '("200 OK", {"Content-Type": "text/plain"})', pyRaised: 'TypeError', js: ['200 OK', { 'Content-Type': 'text/plain' }], jsRaised: 'TypeError', message: /headers must be (a list|an array).*(dict|object)/ },
  { rule: 'headers: a list (str)', py: '("200 OK", "Content-Type: text/plain")', pyRaised: 'TypeError', js: ['200 OK', 'Content-Type: text/plain'], jsRaised: 'TypeError', message: /headers must be (a list|an array).*str(ing)? .Content-Type: text\/plain/ },
  { rule: 'headers: a list (tuple)', py: '("200 OK", (("Content-Type", "text/plain"),))', pyRaised: 'TypeError', message: /headers must be a list.*got tuple/ },
  { rule: 'header: a pair (a str item)', py: '("200 OK", ["Content-Type: text/plain"])', pyRaised: 'TypeError', js: ['200 OK', ['Content-Type: text/plain']], jsRaised: 'TypeError', message: /headers\[0\] must be a (\(name, value\) tuple|\[name, value\] pair), got str(ing)? / },
  { rule: 'header: a tuple (a list item)', py: '("200 OK", [["Content-Type", "text/plain"]])', pyRaised: 'TypeError', message: /headers\[0\] must be a \(name, value\) tuple, got list/ },
  { rule: 'header: 2 items (1)', py: '("200 OK", [("Content-Type",)])', pyRaised: 'ValueError', js: ['200 OK', [['Content-Type']]], jsRaised: 'RangeError', message: /of 2 items, got 1/ },
  { rule: 'header: 2 items (3)', py: '("200 OK", [("A", "b", "c")])', pyRaised: 'ValueError', js: ['200 OK', [['A', 'b', 'c']]], jsRaised: 'RangeError', message: /of 2 items, got 3/ },
  { rule: 'header name: a native str', py: '("200 OK", [(b"X-A", "b")])', pyRaised: 'TypeError', js: ['200 OK', [[{ $bytes: 'X-A' }, 'b']]], jsRaised: 'TypeError', message: /header name must be a (native str|string), got (bytes b'X-A'|a Uint8Array)/ },
  { rule: 'header value: a native str', py: '("200 OK", [("Content-Length", 5)])', pyRaised: 'TypeError', js: ['200 OK', [['Content-Length', 5]]], jsRaised: 'TypeError', message: /value of header .Content-Length. must be a (native str|string), got (int|number) 5/ },
  { rule: 'exc_info: None or a 3-tuple (int)', py: '("200 OK", [], 5)', pyRaised: 'TypeError', js: ['200 OK', [], 5], jsRaised: 'TypeError', message: /exc(_i|I)nfo must be .*got (int|number) 5/ },
  { rule: 'exc_info: None or a 3-tuple (2 items)', py: '("200 OK", [], (1, 2))', pyRaised: 'TypeError', message: /exc_info must be None or the 3-tuple.*tuple \(1, 2\)/ },
];

/** JSON strings are Python str literals too (the same escapes). */
const pyStr = (text: string) => JSON.stringify(text);
const pyCase = (c: ContentCase) => `(${pyStr(c.status)}, [${c.headers.map(([n, v]) => `(${pyStr(n)}, ${pyStr(v)})`).join(', ')}])`;

const checkPath = (prefix: string, literal: string) => `${prefix}/check?${encodeURIComponent(literal)}`;

async function verdict(t: TestServer, path: string): Promise<Verdict> {
  const response = await fetch(`${t.url}${path}`);
  expect(response.status).toBe(200);
  return (await response.json()) as Verdict;
}

// A test process given to one CPython of the native engine (vitest.config.ts) runs only
// the Python cases, on that engine; the rest runs once, in the main processes.
const NATIVE_ONLY = !PYODIDE_TESTED;

describe.skipIf(NATIVE_ONLY)('the main thread, the last line of defence', () => {
  it.each(CONTENT_CASES.map((c) => [c.rule, c] as const))('%s', (_rule, c) => {
    const status = parseStatusLine(c.status);
    const fault = 'fault' in status ? status.fault : findHeaderFault(c.headers.flat() as string[]);
    expect(fault === undefined ? null : 'rejected').toBe(c.py === null ? null : 'rejected');
  });
});

for (const engine of pythonEngines()) {
  describe.skipIf(engine.skip !== undefined)(`Python start_response: ${engineTitle(engine)}`, () => {
    let t: TestServer;
    beforeAll(async () => {
      t = await startTestServer([`/py=${PY_APP}`, '--workers', '1', ...engine.args]);
    }, 120_000);
    afterAll(() => t?.close());

    it.each(CONTENT_CASES.map((c) => [c.rule, c] as const))('%s', async (_rule, c) => {
      const seen = await verdict(t, checkPath('/py', pyCase(c)));
      expect(seen.raised).toBe(c.py);
      if (c.message) expect(seen.message).toMatch(c.message);
    });

    it.each(TYPE_CASES.map((c) => [c.rule, c] as const))('%s', async (_rule, c) => {
      const seen = await verdict(t, checkPath('/py', c.py));
      expect(seen.raised).toBe(c.pyRaised);
      expect(seen.message).toMatch(c.message);
    });

    it('uncaught: 500, and the logged traceback ends at the app\'s own line', async () => {
      const path = `/py/uncaught?${encodeURIComponent('("200 OK", [("X-A", "a\\r\\nb")])')}`;
      const response = await rawRequest(t.port, getRequest(path));
      expect(response.status).toBe(500);
      const line = await waitFor(() => t.logs.find((l) => l.path === '/py/uncaught' && l.status === 500), 5000, 'the error line');
      const detail = String(line.detail);
      expect(detail).toMatch(/reports-start-response-errors\.py", line \d+, in app\n\s+start_response\(\*ast\.literal_eval\(unquote\(query\)\)\)\n(\s+[~^]+\n)?ValueError: value of header 'X-A' contains CR or LF/);
      expect(detail).not.toMatch(/interpool_wsgi|runtime\/wsgi\.py/);
    });

    it('a second call without exc_info raises in the app (RuntimeError), which still answers', async () => {
      const seen = await verdict(t, '/py/second');
      expect(seen).toMatchObject({ raised: 'RuntimeError', message: expect.stringMatching(/second time without exc_info \(the status is already '200 OK'\)/) });
    });

    it('exc_info before any output: the second status and headers are what the client gets', async () => {
      const response = await rawRequest(t.port, getRequest('/py/replace'));
      expect(response.statusLine).toBe('HTTP/1.1 503 Replaced');
      expect(headerOf(response, 'x-replaced')).toBe('yes');
      expect(headerOf(response, 'x-original')).toBeUndefined();
      expect(response.body.toString()).toBe('replaced\n');
    });

    it('exc_info with a bad status raises, and the first status stands', async () => {
      expect(await verdict(t, '/py/replace-bad')).toMatchObject({ raised: 'ValueError', message: expect.stringMatching(/'5xx Oops'/) });
    });

    it('exc_info after output: start_response raises the app\'s exception again', async () => {
      const response = await rawRequest(t.port, getRequest('/py/after'));
      expect(response.status).toBe(200);
      expect(response.body.toString()).toBe('first chunk\nre-raised ValueError: too late for new headers\n');
    });

    it('environ: wsgi.input_terminated True; one worker, one process: multithread and multiprocess False', async () => {
      const response = await fetch(`${t.url}/py/environ`, { method: 'POST', body: 'the whole body' });
      expect(await response.json()).toEqual({ 'wsgi.input_terminated': true, 'wsgi.multithread': false, 'wsgi.multiprocess': false, body: 'the whole body' });
    });

    it('wsgi.file_wrapper reads a real file through its descriptor, from its position, and closes it', async () => {
      const response = await fetch(`${t.url}/py/file`);
      const body = new Uint8Array(await response.arrayBuffer());
      const content = new Uint8Array(256 * 5000).map((_, i) => i & 0xff);
      expect(body.byteLength).toBe(content.byteLength - 10);
      expect(Buffer.compare(body, content.subarray(10))).toBe(0);
      expect(await verdict(t, '/py/file-state')).toMatchObject({ reads: 0, closed: true });
    });

    it.each([
      ['a list', ''],
      ['a stream', '&stream'],
    ])('Content-Length is a promise (%s): more bytes are cut at it, with a warning', async (_shape, stream) => {
      const path = `/py/length?declared=5&body=12${stream}`;
      const response = await rawRequest(t.port, getRequest(path));
      expect(response.status).toBe(200);
      expect(response.body.toString()).toBe('xxxxx');
      expect(response.truncated).toBe(false);
      const warning = await waitFor(() => t.logs.find((l) => l.level === 40 && l.path === '/py/length'), 5000, 'the warning');
      expect(String(warning.msg)).toMatch(/more than its Content-Length of 5 bytes; the body was cut at 5/);
      t.logs.splice(t.logs.indexOf(warning), 1);
    });

    it('Content-Length: fewer bytes than declared close the connection (a stream) or answer 500 (a list)', async () => {
      const streamed = await rawRequest(t.port, getRequest('/py/length?declared=20&body=12&stream'));
      expect(streamed.status).toBe(200);
      expect(streamed.truncated).toBe(true);
      expect((await rawRequest(t.port, getRequest('/py/length?declared=20&body=12'))).status).toBe(500);
    });

    it('under wsgiref.validate, the valid cases pass the validator', async () => {
      expect(await verdict(t, checkPath('/py/validated', pyCase(CONTENT_CASES[0]!)))).toEqual({ raised: null });
      expect((await rawRequest(t.port, getRequest('/py/validated/replace'))).statusLine).toBe('HTTP/1.1 503 Replaced');
      expect((await fetch(`${t.url}/py/validated/file`)).status).toBe(200);
      expect((await fetch(`${t.url}/py/validated/environ?sized`, { method: 'POST', body: 'x' })).status).toBe(200);
      expect(t.logs.filter((l) => /AssertionError|WSGIWarning/.test(`${String(l.msg)} ${String(l.detail ?? '')}`))).toEqual([]);
    });
  });
}

describe.skipIf(NATIVE_ONLY)('JS startResponse', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer([`/js=${JS_APP}`, '--workers', '1']);
  });
  afterAll(() => t?.close());

  it.each(CONTENT_CASES.map((c) => [c.rule, c] as const))('%s', async (_rule, c) => {
    const seen = await verdict(t, checkPath('/js', JSON.stringify([c.status, c.headers])));
    expect(seen.raised).toBe(c.js);
    // The message shows the offending value, as JSON.
    if (c.js) expect([c.status, ...c.headers.flat()].some((value) => seen.message!.includes(JSON.stringify(value)))).toBe(true);
  });

  it.each(TYPE_CASES.filter((c) => c.js).map((c) => [c.rule, c] as const))('%s', async (_rule, c) => {
    const seen = await verdict(t, checkPath('/js', JSON.stringify(c.js)));
    expect(seen.raised).toBe(c.jsRaised);
    expect(seen.message).toMatch(c.message);
  });

  it('uncaught: 500, and the logged stack names the app\'s own line', async () => {
    const path = `/js/uncaught?${encodeURIComponent(JSON.stringify(['200 OK', [['X-A', 'a\r\nb']]]))}`;
    expect((await rawRequest(t.port, getRequest(path))).status).toBe(500);
    const line = await waitFor(() => t.logs.find((l) => l.path === '/js/uncaught' && l.status === 500), 5000, 'the error line');
    expect(String(line.detail)).toMatch(/^RangeError: value of header "X-A" contains CR or LF[^]*reports-start-response-errors\.ts:\d+/);
  });

  it('a second call without excInfo throws in the app, which still answers', async () => {
    expect(await verdict(t, '/js/second')).toMatchObject({ raised: 'Error', message: expect.stringMatching(/second time without excInfo \(the status is already "200 OK"\)/) });
  });

  it('excInfo before any output: the second status and headers are what the client gets', async () => {
    const response = await rawRequest(t.port, getRequest('/js/replace'));
    expect(response.statusLine).toBe('HTTP/1.1 503 Replaced');
    expect(headerOf(response, 'x-replaced')).toBe('yes');
    expect(headerOf(response, 'x-original')).toBeUndefined();
  });

  it('excInfo with a bad status throws, and the first status stands', async () => {
    expect(await verdict(t, '/js/replace-bad')).toMatchObject({ raised: 'RangeError', message: expect.stringMatching(/"5xx Oops"/) });
  });

  it('excInfo after output: startResponse throws the app\'s error again', async () => {
    const response = await rawRequest(t.port, getRequest('/js/after'));
    expect(response.body.toString()).toBe('first chunk\nre-raised RangeError: too late for new headers\n');
  });

  it('environ: wsgi.input_terminated true; one worker: multithread and multiprocess false', async () => {
    const response = await fetch(`${t.url}/js/environ`, { method: 'POST', body: 'the whole body' });
    expect(await response.json()).toEqual({ 'wsgi.input_terminated': true, 'wsgi.multithread': false, 'wsgi.multiprocess': false, body: 'the whole body' });
  });

  it.each(['', '&stream'])('Content-Length is a promise (%s): more bytes are cut at it, with a warning', async (stream) => {
    const response = await rawRequest(t.port, getRequest(`/js/length?declared=5&body=12${stream}`));
    expect(response.body.toString()).toBe('xxxxx');
    expect(response.truncated).toBe(false);
    const warning = await waitFor(() => t.logs.find((l) => l.level === 40 && l.path === '/js/length'), 5000, 'the warning');
    t.logs.splice(t.logs.indexOf(warning), 1);
  });
});

describe.skipIf(NATIVE_ONLY)('wsgi.multithread and wsgi.multiprocess follow the mode', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer([
      `/py-embedded=${PY_APP}`, `/js-embedded=${JS_APP}`, '--workers', '0',
    ]);
  }, 120_000);
  afterAll(() => t?.close());

  it.each(['/py-embedded', '/js-embedded'])('embedded mode (--workers 0), %s: multithread true, multiprocess false', async (app) => {
    expect(await (await fetch(`${t.url}${app}/environ`)).json()).toMatchObject({ 'wsgi.multithread': true, 'wsgi.multiprocess': false });
  });

  it('--workers 2: multiprocess true (each interpreter has its own module state)', async () => {
    const pooled = await startTestServer([`/py=${PY_APP}`, `/js=${JS_APP}`, '--workers', '2', '--min-workers', '1']);
    try {
      for (const app of ['/py', '/js']) {
        expect(await (await fetch(`${pooled.url}${app}/environ`)).json()).toMatchObject({ 'wsgi.multithread': false, 'wsgi.multiprocess': true });
      }
    } finally {
      await pooled.close();
    }
  }, 120_000);
});

describe.skipIf(NATIVE_ONLY)('--timeout raises interpool.RequestTimeout in a Python app', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer([`/py=${PY_APP}`, '--workers', '1', '--timeout', '1', '--timeout-grace', '20']);
    // Booting counts against --timeout too: wait until the interpreter answers.
    await waitFor(async () => (await fetch(`${t.url}/py/timeout-state`)).status === 200, 60_000, 'the app to boot');
  }, 120_000);
  afterAll(() => t?.close());

  it('504, the app sees RequestTimeout (not caught by except Exception), one info line and no traceback', async () => {
    const response = await rawRequest(t.port, getRequest('/py/timeout'));
    expect(response.status).toBe(504);
    const state = await waitFor(async () => {
      const seen = (await (await fetch(`${t.url}/py/timeout-state`)).json()) as { timeout: string | null };
      return seen.timeout !== null && seen;
    }, 10_000, 'the app to see the timeout');
    expect(state.timeout).toBe('interpool.RequestTimeout (interpool.RequestTimeout)');
    const lines = t.logs.filter((l) => l.path === '/py/timeout');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ level: 30, status: 504, code: 'INTERPOOL_ERR_TIMEOUT' });
    expect(lines[0]!.detail).toBeUndefined();
    expect(t.logs.filter((l) => /Traceback|RequestTimeout/.test(`${String(l.msg)} ${String(l.detail ?? '')}`))).toEqual([]);
  });
});
