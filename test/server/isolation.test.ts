// Module state is per interpreter, for every kind (JavaScript, Pyodide, the native
// engine on each CPython it is built for): two apps (even the same file mounted twice)
// never see each other's, and the N workers of one app keep N independent counters and
// N independent random streams.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appKinds, engineTitle } from './python-engines.ts';
import { startTestServer, type TestServer } from './support.ts';

interface Count { worker: number | string; served: number; random: number }

for (const kind of appKinds()) {
  describe.skipIf(kind.skip !== undefined)(`isolation: ${engineTitle(kind)}`, () => {
    let t: TestServer;

    beforeAll(async () => {
      const counter = kind.fixture('counter');
      t = await startTestServer([`/a=${counter}`, `/b=${counter}`, `/pool=${counter}:application`, '--workers', '2', ...kind.args]);
    }, 120_000);
    afterAll(() => t?.close());

    const count = async (path: string): Promise<Count> => (await (await fetch(`${t.url}${path}`)).json()) as Count;

    /** Answers from /pool until both of its workers have served (concurrent pairs, each holding its worker a little), then a few more. */
    async function fromBothWorkers(): Promise<Count[]> {
      const seen: Count[] = [];
      for (let round = 0; round < 30 && new Set(seen.map((c) => c.worker)).size < 2; round++) {
        seen.push(...await Promise.all([count('/pool?hold=100'), count('/pool?hold=100')]));
      }
      for (let i = 0; i < 4; i++) seen.push(...await Promise.all([count('/pool?hold=30'), count('/pool?hold=30')]));
      return seen;
    }

    const byWorker = <T>(seen: Count[], pick: (c: Count) => T) => {
      const groups = new Map<number | string, T[]>();
      for (const c of seen) groups.set(c.worker, [...(groups.get(c.worker) ?? []), pick(c)]);
      return groups;
    };

    it('two apps from the same file keep separate module state and separate workers', async () => {
      const fromA: Count[] = [];
      for (let i = 0; i < 6; i++) fromA.push(await count('/a'));
      const fromB = await count('/b');
      // /b's first request is the first its module ever saw, however busy /a was.
      expect(fromB.served).toBe(1);
      const workersOfA = new Set(fromA.map((c) => c.worker));
      expect(workersOfA.has(fromB.worker)).toBe(false);
      expect(fromA.reduce((sum, c) => Math.max(sum, c.served), 0)).toBeGreaterThanOrEqual(3);
    });

    it('N workers of one app keep N independent counters', async () => {
      const seen = await fromBothWorkers();
      const served = byWorker(seen, (c) => c.served);
      expect(served.size).toBe(2);
      // Each worker counted only its own requests: its values are exactly 1..k (this
      // test runs after the one above, which left /pool alone).
      for (const values of served.values()) {
        expect([...values].sort((x, y) => x - y)).toEqual(values.map((_, i) => i + 1));
      }
      expect([...served.values()].reduce((sum, values) => sum + values.length, 0)).toBe(seen.length);
    });

    it('N workers of one app keep N independent random streams', async () => {
      // Interpreters seeded alike (restored from one snapshot, say) would draw the same
      // numbers: no draw of one worker may appear among another's.
      const draws = [...byWorker(await fromBothWorkers(), (c) => c.random).values()];
      expect(draws).toHaveLength(2);
      const [first, second] = draws as [number[], number[]];
      expect(first.filter((value) => second.includes(value))).toEqual([]);
      expect(new Set(first).size).toBe(first.length);
    });
  });
}
