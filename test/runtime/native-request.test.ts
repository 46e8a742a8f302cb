// A request's way into a native subinterpreter and its response's way out, as
// runtime/interpreters/native.ts passes them: the CGI variables packed into one string
// (the object converted instead when a value holds a NUL of its own), the status and
// headers packed into one string on the way back. Each run is a child process
// (test/fixtures/native/serves-requests.ts): one process embeds one CPython.
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { listNativeBuilds } from '../../native/builds.ts';
import { engineTitle, nativeEngines } from '../server/python-engines.ts';

const SCRIPT = 'test/fixtures/native/serves-requests.ts';

interface Result {
  kind: string;
  status?: string;
  /** Flat: name, value, ... (runtime/protocol.ts FlatHeaders). */
  headers?: string[];
  body?: string;
  streamed: Array<{ type: string; status?: string; headers?: string[]; data?: string }>;
}

interface Served {
  results: Result[];
  /** What the ended interpreter left of its allocator (native/src/arenas.h). */
  ended: { releasedBytes: number; keptBytes: number; interpreters: number } | null;
}

function serve(version: string, app: string, requests: Array<{ cgi: Record<string, string> }>): Served {
  const build = listNativeBuilds().find((candidate) => candidate.version === version)!;
  const run = spawnSync(process.execPath, [SCRIPT, build.addon, build.executable, app, JSON.stringify(requests)], { encoding: 'utf8', timeout: 60_000 });
  if (run.status !== 0) throw new Error(`status ${run.status}, signal ${run.signal}: ${run.stderr}`);
  return JSON.parse(run.stdout) as Served;
}

const CGI: Record<string, string> = {
  HTTP_HOST: 'example.test', REQUEST_METHOD: 'GET', SCRIPT_NAME: '',
  PATH_INFO: '/', QUERY_STRING: '', SERVER_NAME: 'example.test', SERVER_PORT: '80', SERVER_PROTOCOL: 'HTTP/1.1',
  REMOTE_ADDR: '127.0.0.1', REMOTE_PORT: '5000',
};

/** The app's headers, asked for in the query string (test/fixtures/apps/headers-from-query.py). */
function asking(status: string, headers: Array<[string, string]>, stream = false): { cgi: Record<string, string> } {
  return { cgi: { ...CGI, QUERY_STRING: encodeURIComponent(JSON.stringify({ status, headers, stream })) } };
}

for (const engine of nativeEngines()) {
  const version = engine.name.split(' ').at(-1)!;
  describe.skipIf(engine.skip !== undefined)(`a request through ${engineTitle(engine)}`, () => {
    it('the app sees every CGI variable as it was sent: latin-1, empty, long, a NUL in PATH_INFO, a non-latin-1 character', () => {
      const cases: Array<Record<string, string>> = [
        { ...CGI, PATH_INFO: '/caf\u00e9', HTTP_X_EMPTY: '', HTTP_COOKIE: `a=${'x'.repeat(5000)}` },
        // A value with a NUL of its own cannot be split from the packed string: the object is converted instead.
        { ...CGI, PATH_INFO: '/a\u0000b', QUERY_STRING: 'q=1' },
        { ...CGI, SCRIPT_NAME: '/\u20ac', HTTP_X_LAST: 'end' },
      ];
      const { results } = serve(version, 'test/fixtures/apps/environ-echo.py', cases.map((cgi) => ({ cgi })));
      for (const [index, cgi] of cases.entries()) {
        expect(results[index]!.kind).toBe('response');
        const environ = JSON.parse(results[index]!.body!) as Record<string, unknown>;
        const sent = Object.fromEntries(Object.keys(environ).filter((key) => !key.includes('.')).map((key) => [key, environ[key]]));
        expect(sent).toEqual(cgi);
        expect(environ['wsgi.url_scheme']).toBe('http');
      }
    });

    it('the status and headers come back as the app gave them, whole or with the first streamed chunk', () => {
      const headers: Array<[string, string]> = [
        ['Content-Type', 'text/plain; charset=utf-8'], ['X-Empty', ''], ['Set-Cookie', 'a=1'], ['Set-Cookie', 'b=2'],
        ['X-Spaces', 'a  b\tc'], ['X-Latin-1', 'caf\u00e9'],
      ];
      const [whole, none, streamed, again] = serve(version, 'test/fixtures/apps/headers-from-query.py', [
        asking('201 Created', headers), asking('200 OK', []), asking('299 Whatever it is', headers, true), asking('201 Created', headers),
      ]).results;
      expect(whole).toMatchObject({ kind: 'response', status: '201 Created', headers: headers.flat(), body: 'ok' });
      expect(none).toMatchObject({ kind: 'response', status: '200 OK', headers: [], body: 'ok' });
      expect(streamed!.kind).toBe('streamed');
      expect(streamed!.streamed.map((message) => message.type)).toEqual(['start', 'chunk', 'chunk', 'end']);
      expect(streamed!.streamed[0]).toMatchObject({ status: '299 Whatever it is', headers: headers.flat() });
      // The same headers again: start_response's checks remember valid pairs, and hand them on unchanged.
      expect(again).toMatchObject({ kind: 'response', status: '201 Created', headers: headers.flat(), body: 'ok' });
    });

    // The addon keeps the CGI names it made as str from one request to the next; they are
    // the interpreter's objects, dropped before it ends. The project-built 3.13 leaves no
    // block of an ended own-GIL interpreter (test/runtime/native-subinterpreters.test.ts),
    // so CPython frees all its arenas, and nothing is left for the addon to release.
    const build = listNativeBuilds().find((candidate) => candidate.version === version);
    it.skipIf(engine.sharedGil === true || build?.source !== 'project')('an interpreter that served requests leaves nothing of its allocator when it ends', () => {
      const cases = Array.from({ length: 20 }, (_, i) => ({ cgi: { ...CGI, [`HTTP_X_NAME_${i}`]: 'v' } }));
      const { ended } = serve(version, 'test/fixtures/apps/environ-echo.py', cases);
      expect(ended).toMatchObject({ interpreters: 1, keptBytes: 0, releasedBytes: 0 });
    });
  });
}
