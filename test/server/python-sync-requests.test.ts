// A WSGI request is synchronous: under Pyodide, whose event loop always reports itself
// running, the app must see no running loop (as under gunicorn), so that Django's ORM
// does not refuse it with SynchronousOnlyOperation. (The network still works inside a
// request: test/server/python-network-services.test.ts.)
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from './support.ts';

let t: TestServer;

beforeAll(async () => {
  t = await startTestServer(['--config', 'test/fixtures/python/sync-requests.json']);
}, 120_000);
afterAll(() => t?.close());

describe('a WSGI request under Pyodide has no running event loop', () => {
  for (const mount of ['/loop314', '/loop312']) {
    it(`asyncio.get_running_loop() raises RuntimeError, the current loop is not running, asyncio.run() works (${mount})`, async () => {
      for (let round = 0; round < 2; round += 1) {
        const response = await fetch(`${t.url}${mount}`);
        expect(response.status).toBe(200);
        expect(await response.json()).toEqual({
          running_loop: 'RuntimeError: no running event loop', event_loop_running: false, asyncio_run: 'slept', running_after_run: false,
        });
      }
    });
  }

  it('Debian\'s Django 3.2 ORM writes and reads a model on SQLite in a request (3.14)', async () => {
    const first = await fetch(`${t.url}/django?first`);
    expect([first.status, await first.text()]).toEqual([200, 'first']);
    const second = await fetch(`${t.url}/django?second`);
    expect([second.status, await second.text()]).toEqual([200, 'first,second']);
  });
});
