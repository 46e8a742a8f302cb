// Isolation between Python interpreters, on each Python engine (Pyodide, and the native
// engine on each CPython it is built for): two apps each import their own `settings`; a
// monkey-patch of the stdlib in one interpreter is invisible to the other interpreters
// of its app and to other apps. (N module states and N random streams per app, for
// every kind of interpreter: isolation.test.ts.)
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { engineTitle, pythonEngines } from './python-engines.ts';
import { startTestServer, type TestServer } from './support.ts';

interface Count { worker: string; served: number; dumps: string }

for (const engine of pythonEngines()) {
  describe.skipIf(engine.skip !== undefined)(`Python isolation: ${engineTitle(engine)}`, () => {
    let t: TestServer;

    beforeAll(async () => {
      t = await startTestServer([
        '/counter=test/fixtures/apps/counter.py', '/json=test/fixtures/apps/reads-json.py',
        '/a=test/fixtures/python/site-a/app.py', '/b=test/fixtures/python/site-b/app.py',
        '--workers', '2', ...engine.args,
      ]);
    }, 120_000);
    afterAll(() => t?.close());

    const count = async (query = ''): Promise<Count> => (await (await fetch(`${t.url}/counter${query}`)).json()) as Count;

    /** Concurrent pairs of requests that each hold their interpreter: both workers serve. */
    async function fromBothWorkers(): Promise<Count[]> {
      const seen: Count[] = [];
      for (let round = 0; round < 30 && new Set(seen.map((c) => c.worker)).size < 2; round++) {
        seen.push(...await Promise.all([count('?hold=150'), count('?hold=150')]));
      }
      return seen;
    }

    it('two apps with a module of the same name each import their own', async () => {
      expect(await (await fetch(`${t.url}/a`)).text()).toBe('settings of site a');
      expect(await (await fetch(`${t.url}/b`)).text()).toBe('settings of site b');
      expect(await (await fetch(`${t.url}/a`)).text()).toBe('settings of site a');
    });

    it('a json.dumps monkey-patch stays in the interpreter that made it', async () => {
      const patched = await count('?patch');
      expect(patched.dumps).toBe('patched');
      const seen = await fromBothWorkers();
      const other = seen.find((c) => c.worker !== patched.worker)!;
      expect(other.dumps).toBe('real');
      expect(seen.filter((c) => c.worker === patched.worker).every((c) => c.dumps === 'patched')).toBe(true);
      expect(await (await fetch(`${t.url}/json`)).json()).toEqual({ dumps: '"real"' });
    });
  });
}
