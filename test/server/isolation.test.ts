// Module state is per interpreter: two apps (even the same file mounted twice) never see
// each other's, and the N workers of one app keep N independent counters.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from './support.ts';

const COUNTER = 'test/fixtures/apps/counter.ts';
let t: TestServer;

interface Count { worker: number; served: number }

beforeAll(async () => {
  t = await startTestServer([`/a=${COUNTER}`, `/b=${COUNTER}`, `/pool=${COUNTER}:application`, '--workers', '2']);
});
afterAll(() => t?.close());

const count = async (path: string): Promise<Count> => (await (await fetch(`${t.url}${path}`)).json()) as Count;

describe('isolation', () => {
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
    const seen: Count[] = [];
    // Concurrent pairs of requests that each hold their worker a little: both workers serve.
    for (let round = 0; round < 20 && new Set(seen.map((c) => c.worker)).size < 2; round++) {
      seen.push(...await Promise.all([count('/pool?hold=100'), count('/pool?hold=100')]));
    }
    for (let i = 0; i < 4; i++) seen.push(...await Promise.all([count('/pool?hold=30'), count('/pool?hold=30')]));
    const byWorker = new Map<number, number[]>();
    for (const c of seen) byWorker.set(c.worker, [...(byWorker.get(c.worker) ?? []), c.served]);
    expect(byWorker.size).toBe(2);
    // Each worker counted only its own requests: its values are exactly 1..k.
    for (const served of byWorker.values()) {
      expect([...served].sort((x, y) => x - y)).toEqual(served.map((_, i) => i + 1));
    }
    expect([...byWorker.values()].reduce((sum, served) => sum + served.length, 0)).toBe(seen.length);
  });
});
