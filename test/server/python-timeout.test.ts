// --timeout for Python apps: the interrupt raises interpool.RequestTimeout inside the app (a
// pure-Python loop and a time.sleep(3600) alike), close() runs, the client gets 504, and
// the same interpreter goes on serving — on Pyodide 3.14 and 3.12 (the interrupt buffer)
// and on the native engine on each CPython it is built for (an asynchronous exception
// from the addon's watcher thread). And an interpreter that ends itself (os._exit) is
// replaced, from the app's snapshot.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { engineTitle, nativeEngines, PYODIDE_TESTED } from './python-engines.ts';
import { startTestServer, waitFor, type TestServer } from './support.ts';

let t: TestServer;

beforeAll(async () => {
  if (PYODIDE_TESTED) t = await startTestServer(['--config', 'test/fixtures/python/timeouts.json']);
}, 120_000);
afterAll(() => t?.close());

/** The native engine's servers, one per CPython, each serving the spinning app at /native. */
const nativeServers = new Map<string, TestServer>();
afterAll(() => Promise.all([...nativeServers.values()].map((server) => server.close())));

interface Target { title: string; mount: string; server: () => TestServer; args?: string[]; skip?: string }
const targets: Target[] = [
  ...(PYODIDE_TESTED ? [{ title: '/v314', mount: '/v314', server: () => t }, { title: '/v312', mount: '/v312', server: () => t }] : []),
  ...nativeEngines().map((engine) => ({
    title: engineTitle(engine), mount: '/native', server: () => nativeServers.get(engineTitle(engine))!, args: engine.args, skip: engine.skip,
  })),
];

interface State { served: number; closed: number; interruptedBy: string | null }
// The app's counters, once it answers: a request that arrives while the interrupted one
// is still returning waits behind it, and on a loaded machine may itself reach --timeout
// (504, and the app never sees it).
const stateNow = async (server: TestServer, app: string): Promise<State | false> => {
  const response = await fetch(`${server.url}${app}/`);
  return response.status === 200 && (await response.json()) as State;
};
const state = (server: TestServer, app: string): Promise<State> => waitFor(() => stateNow(server, app), 10_000, `${app} to answer`);

describe.each(targets)('Python --timeout ($title)', ({ title, mount: app, server, args, skip }) => {
  if (args) {
    beforeAll(async () => {
      if (skip) return;
      nativeServers.set(title, await startTestServer([
        `${app}=test/fixtures/apps/spins-forever.py`, '--workers', '1', '--timeout', '1', '--timeout-grace', '3', ...args,
      ]));
    }, 120_000);
  }

  it.skipIf(skip !== undefined).each(['/spin', '/sleep'])('%s: 504, interpool.RequestTimeout in the app, close() called, interpreter kept', async (how) => {
    const t = server();
    const before = await state(t, app);
    const response = await fetch(`${t.url}${app}${how}`);
    expect(response.status).toBe(504);
    expect(await response.text()).toContain('INTERPOOL_ERR_TIMEOUT');
    // The same interpreter serves again: its counters go on from where they were.
    const after = await waitFor(async () => {
      const now = await stateNow(t, app);
      return now && now.closed >= before.closed + 2 && now;
    }, 10_000, 'the interrupted request to be closed');
    expect(after.served).toBe(before.served + 2);
    // Both engines raise the same exception: the native addon's asynchronous one too.
    expect(after.interruptedBy).toBe('RequestTimeout');
    expect(t.logs.some((l) => l.app === app && /terminating its worker/.test(String(l.msg)))).toBe(false);
  }, 20_000);
});

describe.skipIf(!PYODIDE_TESTED)('a Python interpreter that exits', () => {
  it('gets a 502 and is replaced by one restored from the snapshot', async () => {
    const before = await (await fetch(`${t.url}/exits/`)).text();
    expect((await fetch(`${t.url}/exits/exit`)).status).toBe(502);
    const after = await waitFor(async () => {
      const response = await fetch(`${t.url}/exits/`);
      return response.status === 200 && response.text();
    }, 20_000, 'a new interpreter');
    expect(after).not.toBe(before);
    const boots = t.logs.filter((l) => l.app === '/exits' && l.msg === 'interpreter booted');
    expect(boots.length).toBeGreaterThanOrEqual(2);
    const stages = (boots.at(-1)!.stages as { name: string }[]).map((s) => s.name);
    expect(stages).toContain('restore snapshot');
    expect(stages).not.toContain('load runtime');
  }, 30_000);
});
