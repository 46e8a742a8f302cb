// Every way a Pyodide interpreter can end mid-request (os._exit, sys.exit, os.abort,
// os.kill of itself, a C-level recursion that overflows the runtime's stack) gives 502
// INTERPOOL_ERR_WORKER_DIED with the cause in the log, and a new interpreter serves
// the next request. On the native engine os._exit() and sys.exit() in a request do the
// same (each ends its subinterpreter, not the process; at import, os._exit() fails the
// app's boot); os.abort() is a crash of the process, which --processes replaces. Deep
// recursion the app can see (Python frames under a raised sys.setrecursionlimit, repr()
// recursing through __repr__) is a RecursionError in the app, and the interpreter keeps
// serving. Whatever the interpreter prints — Python's
// print(), the runtime's fatal-error banner — reaches the server's own stdout and
// stderr as JSON log lines only, as does a JS app's console.log. One real `interpool
// serve` process per engine, whose output is read whole.
import type { ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { engineTitle, nativeEngines, PYODIDE_TESTED } from './python-engines.ts';
import { startChild, waitFor, type StartedChild } from './support.ts';

let server: StartedChild;

beforeAll(async () => {
  if (PYODIDE_TESTED) server = await startChild([
    '/=test/fixtures/apps/ends-its-interpreter.py', '/js=test/fixtures/apps/prints-to-console.ts', '--workers', '1',
  ]);
}, 120_000);
afterAll(() => (server ? stop(server.child) : undefined));

function stop(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
  });
}

/** Every line a server wrote, stdout and stderr alike; each must be a JSON object. */
function logLines(of = server): Record<string, unknown>[] {
  return of.output().split('\n').filter((line) => line.trim() !== '').map((line) => JSON.parse(line) as Record<string, unknown>);
}

/** The name of the interpreter that serves `/`, once one does (a replacement boots first). */
function interpreterName(of = server): Promise<string> {
  return waitFor(async () => {
    const response = await fetch(`${of.url}/`).catch(() => undefined);
    return response?.status === 200 && response.text();
  }, 30_000, 'an interpreter to serve /');
}

/** `path` ends the interpreter serving it: 502 WORKER_DIED, `cause` in the log line, a new interpreter next. */
async function expectEndedAndReplaced(of: StartedChild, path: string, cause: RegExp): Promise<void> {
  const before = await interpreterName(of);
  const response = await fetch(`${of.url}${path}`);
  expect(response.status).toBe(502);
  expect(await response.text()).toMatch(/INTERPOOL_ERR_WORKER_DIED/);
  const line = await waitFor(() => logLines(of).find((l) => l.path === path && l.status === 502), 5000, `the 502 line of ${path}`);
  expect(line.code).toBe('INTERPOOL_ERR_WORKER_DIED');
  expect(line.msg).toMatch(cause);
  expect(await interpreterName(of)).not.toBe(before);
}

describe.skipIf(!PYODIDE_TESTED)('a Python interpreter that ends mid-request', () => {
  it.each([
    ['/os-exit', /the Python interpreter exited with status 3/],
    ['/sys-exit', /the Python app called sys\.exit\(4\): its interpreter exits/],
    ['/abort', /the Python interpreter suffered a fatal error: RuntimeError/],
    ['/kill', /the Python interpreter exited with status 137/],
    // hash() of a nested tuple recurses in C where CPython does not check its stack.
    ['/recurse-hash', /the Python interpreter overflowed its stack/],
  ])('%s: 502 WORKER_DIED, the cause in the log, and a new interpreter serves next', (path, cause) => expectEndedAndReplaced(server, path, cause), 60_000);
});

for (const engine of nativeEngines()) {
  describe.skipIf(engine.skip !== undefined)(`a native interpreter that ends mid-request: ${engineTitle(engine)}`, () => {
    let native: StartedChild;
    beforeAll(async () => {
      native = await startChild([
        '/=test/fixtures/apps/ends-its-interpreter.py', '/import-exit=test/fixtures/apps/exits-at-import.py', '--workers', '1', ...engine.args,
      ]);
    }, 120_000);
    afterAll(() => (native ? stop(native.child) : undefined));

    // A worker process of gunicorn or mod_wsgi ends on these, and is replaced: here the
    // subinterpreter is that process (os._exit() would otherwise end every app's).
    it.each([
      ['/os-exit', /the Python app called os\._exit\(3\): its interpreter exits/],
      ['/sys-exit', /the Python app called sys\.exit\(4\): its interpreter exits/],
    ])('%s: 502 WORKER_DIED, the cause in the log, and a new interpreter serves next', (path, cause) => expectEndedAndReplaced(native, path, cause), 60_000);

    it('os._exit() while the app is imported is a boot failure of that app (503, retried), not the end of the process', async () => {
      const refused = await fetch(`${native.url}/import-exit`);
      expect(refused.status).toBe(503);
      expect(await refused.text()).toContain('INTERPOOL_ERR_APP_UNAVAILABLE');
      await waitFor(() => logLines(native).find((l) => l.app === '/import-exit' && /failed to import: InterpreterExit: 5/.test(String(l.msg))), 10_000, 'the boot failure line');
    });

    it('the server process goes on serving after them', async () => {
      expect(native.child.exitCode).toBeNull();
      expect(native.child.signalCode).toBeNull();
      expect(await interpreterName(native)).toMatch(/^[0-9a-f]{8}$/);
    });
  });

  describe.skipIf(engine.skip !== undefined)(`a native app that crashes its process: ${engineTitle(engine)}`, () => {
    // docs/python.md: a crash in extension code (here os.abort()) ends the whole server
    // process, every interpreter in it; --processes is the isolation boundary.
    it('os.abort() ends its server process; with --processes 2 the primary replaces it', async () => {
      const cluster = await startChild(['/=test/fixtures/apps/ends-its-interpreter.py', '--workers', '1', '--processes', '2', ...engine.args], /listening on (http:\/\/[\d.]+:\d+) with 2 processes/);
      try {
        await interpreterName(cluster);
        // The connection dies with the process: no response at all.
        expect(await fetch(`${cluster.url}/abort`, { headers: { connection: 'close' } }).then((r) => r.status, () => 'no response')).toBe('no response');
        const died = await waitFor(() => logLines(cluster).find((l) => l.msg === 'a server process died; starting a replacement'), 10_000, 'the primary to see the death');
        expect(died.signal).toBe('SIGABRT');
        await interpreterName(cluster);
      } finally {
        await stop(cluster.child);
      }
    }, 60_000);
  });
}

describe.skipIf(!PYODIDE_TESTED)('deep recursion in a Python app', () => {
  it.each([
    // As in the report: the limit raised to a million, then Python calls without end.
    ['/recurse-python?limit=1000000', /^RecursionError: maximum recursion depth exceeded/],
    // repr() calling __repr__ calling repr(): recursion through C.
    ['/recurse-repr', /^RecursionError: Stack overflow/],
  ])('%s: the app sees RecursionError, and the same interpreter serves next', async (path, error) => {
    const before = await interpreterName();
    const response = await fetch(`${server.url}${path}`);
    expect(response.status).toBe(500);
    expect(await response.text()).toMatch(error);
    expect(await interpreterName()).toBe(before);
  }, 60_000);

  it('a limit above what the stack holds is lowered, and the log says so', async () => {
    await waitFor(() => logLines().find((l) => /sys\.setrecursionlimit\(1000000\) is lowered to \d+/.test(String(l.msg))), 5000, 'the lowered limit in the log');
  });
});

describe.skipIf(!PYODIDE_TESTED)('what an interpreter prints', () => {
  it('print() to stdout and stderr become log lines tagged with app, worker and stream', async () => {
    expect((await fetch(`${server.url}/print`)).status).toBe(200);
    const printed = await waitFor(() => logLines().find((l) => l.msg === 'printed to stdout'), 5000, 'the printed line');
    expect(printed).toMatchObject({ app: '/', stream: 'stdout', level: 30 });
    expect(printed.worker).toEqual(expect.any(Number));
    const written = await waitFor(() => logLines().find((l) => l.msg === 'written to stderr'), 5000, 'the stderr line');
    expect(written).toMatchObject({ app: '/', stream: 'stderr', level: 40 });
  });

  it('console.log and process.stdout.write in a JS app become log lines too, whole lines at a time', async () => {
    expect((await fetch(`${server.url}/js/`)).status).toBe(200);
    const partial = await waitFor(() => logLines().find((l) => l.msg === 'a partial line, finished by a second write'), 5000, 'the joined line');
    expect(partial).toMatchObject({ app: '/js', stream: 'stdout' });
    expect(logLines().find((l) => l.msg === 'console.log from a JS app')).toMatchObject({ app: '/js', stream: 'stdout', level: 30 });
    expect(logLines().find((l) => l.msg === 'console.error from a JS app')).toMatchObject({ app: '/js', stream: 'stderr', level: 40 });
  });

  it('everything the server wrote, fatal errors included, is JSON lines', () => {
    // logLines() throws on the first line that is not JSON: say which.
    for (const line of server.output().split('\n').filter((l) => l.trim() !== '')) {
      expect(() => JSON.parse(line), line).not.toThrow();
    }
    // The runtime's fatal-error banner was among them, as log lines of its worker.
    expect(logLines().some((l) => l.stream === 'stderr' && /Pyodide has suffered a fatal error/.test(String(l.msg)))).toBe(true);
  });
});
