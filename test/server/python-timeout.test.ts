// --timeout for Python apps: the interrupt buffer raises KeyboardInterrupt inside the
// app (a pure-Python loop and a time.sleep(3600) alike), close() runs, the client gets
// 504, and the same interpreter goes on serving — on 3.14 and on 3.12. And an
// interpreter that ends itself (os._exit) is replaced, from the app's snapshot.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, waitFor, type TestServer } from './support.ts';

let t: TestServer;

beforeAll(async () => {
  t = await startTestServer(['--config', 'test/fixtures/python/timeouts.json']);
}, 120_000);
afterAll(() => t?.close());

interface State { served: number; closed: number; interruptedBy: string | null }
// The app's counters, once it answers: a request that arrives while the interrupted one
// is still returning waits behind it, and on a loaded machine may itself reach --timeout
// (504, and the app never sees it).
const stateNow = async (app: string): Promise<State | false> => {
  const response = await fetch(`${t.url}${app}/`);
  return response.status === 200 && (await response.json()) as State;
};
const state = (app: string): Promise<State> => waitFor(() => stateNow(app), 10_000, `${app} to answer`);

describe.each(['/v314', '/v312'])('Python --timeout (%s)', (app) => {
  it.each(['/spin', '/sleep'])('%s: 504, KeyboardInterrupt in the app, close() called, interpreter kept', async (how) => {
    const before = await state(app);
    const started = Date.now();
    const response = await fetch(`${t.url}${app}${how}`);
    expect(response.status).toBe(504);
    expect(Date.now() - started).toBeLessThan(3000);
    // The same interpreter serves again: its counters go on from where they were.
    const after = await waitFor(async () => {
      const now = await stateNow(app);
      return now && now.closed >= before.closed + 2 && now;
    }, 10_000, 'the interrupted request to be closed');
    expect(after.served).toBe(before.served + 2);
    expect(after.interruptedBy).toBe('KeyboardInterrupt');
    expect(t.logs.some((l) => l.app === app && /terminating its worker/.test(String(l.msg)))).toBe(false);
  }, 20_000);
});

describe('a Python interpreter that exits', () => {
  it('gets a 500 and is replaced by one restored from the snapshot', async () => {
    const before = await (await fetch(`${t.url}/exits/`)).text();
    expect((await fetch(`${t.url}/exits/exit`)).status).toBe(500);
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
