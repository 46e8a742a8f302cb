/**
 * --max-requests while requests keep coming: every request is answered by an interpreter
 * that had served fewer than N before it, and none is lost to a retiring worker. A
 * recycling worker holds requests offered to it while it served its last one; they must
 * run in fresh interpreters, never fail with WORKER_DIED, never stretch its quota.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { appKinds, engineTitle } from './python-engines.ts';
import { startTestServer, type TestServer } from './support.ts';

let t: TestServer | undefined;
afterEach(async () => { await t?.close(); t = undefined; });

/** `total` GETs, `concurrency` of them in flight at any time (a new one as each ends). */
async function load(url: string, total: number, concurrency: number): Promise<{ status: number; body: string }[]> {
  const answers: { status: number; body: string }[] = [];
  let sent = 0;
  const lane = async () => {
    while (sent < total) {
      sent++;
      const response = await fetch(url);
      answers.push({ status: response.status, body: await response.text() });
    }
  };
  await Promise.all(Array.from({ length: concurrency }, lane));
  return answers;
}

for (const kind of appKinds()) {
  describe.skipIf(kind.skip !== undefined)(`recycling under load: ${engineTitle(kind)}`, () => {
    // Pyodide boots an interpreter in a fraction of a second from its snapshot, the others
    // in milliseconds: fewer recycles for it keep the test short without changing its point.
    const maxRequests = kind.name === 'pyodide' ? 3 : 1;
    const total = kind.name === 'pyodide' ? 18 : 30;

    it(`--workers 2 --max-requests ${maxRequests}, 8 clients: every request answered, no interpreter serves more than ${maxRequests}`, async () => {
      t = await startTestServer([`/=${kind.fixture('counter')}`, '--workers', '2', '--max-requests', String(maxRequests), '--max-requests-jitter', '0', ...kind.args]);
      const answers = await load(`${t.url}/`, total, 8);
      const failed = answers.filter((answer) => answer.status !== 200);
      expect(failed, `failed answers: ${JSON.stringify(failed.slice(0, 3))}`).toEqual([]);
      const served = answers.map((answer) => (JSON.parse(answer.body) as { served: number }).served);
      expect(Math.max(...served)).toBeLessThanOrEqual(maxRequests);
      const recycled = t.logs.filter((line) => line.msg === 'interpreter exited: recycled');
      expect(recycled.every((line) => (line.served as number) <= maxRequests), JSON.stringify(recycled.map((line) => line.served))).toBe(true);
      expect(t.logs.filter((line) => line.code === 'INTERPOOL_ERR_WORKER_DIED')).toEqual([]);
    }, 120_000);
  });
}
