/**
 * Embedded mode (--workers 0, mod_wsgi's embedded mode): one interpreter per app that
 * every concurrent request shares, as threads share one GIL. The other end of the
 * benchmark that pools of interpreters are measured against.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from './support.ts';

let t: TestServer | undefined;
afterEach(async () => { await t?.close(); t = undefined; });

const json = async (url: string) => (await fetch(url)).json() as Promise<{ worker: number; served: number }>;

describe('--workers 0', () => {
  it('serves every request from one interpreter, concurrent requests overlapping in it', async () => {
    t = await startTestServer(['/=test/fixtures/apps/counter.ts', '--workers', '0']);
    const started = Date.now();
    const answers = await Promise.all(Array.from({ length: 4 }, () => json(`${t!.url}/?hold=400`)));
    // Four requests that each wait 400 ms, all inside one interpreter at once.
    expect(Date.now() - started).toBeLessThan(1500);
    expect(new Set(answers.map((answer) => answer.worker)).size).toBe(1);
    expect(answers.map((answer) => answer.served).sort()).toEqual([1, 2, 3, 4]);
    const stats = t.server.groups[0]!.stats();
    expect(stats.workers).toMatchObject({ min: 1, max: 1, now: 1 });
  });

  it('still recycles: the interpreter is replaced once its concurrent requests are done', async () => {
    t = await startTestServer(['/=test/fixtures/apps/counter.ts', '--workers', '0', '--max-requests', '2']);
    const first = await Promise.all([json(`${t.url}/?hold=200`), json(`${t.url}/?hold=200`)]);
    expect(first.map((answer) => answer.served).sort()).toEqual([1, 2]);
    const next = await json(`${t.url}/`);
    expect(next.worker).not.toBe(first[0]!.worker);
    expect(next.served).toBe(1);
  });
});
