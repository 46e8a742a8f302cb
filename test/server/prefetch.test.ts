/**
 * Prefetch: a busy worker is handed its next requests while it runs one, so that it goes
 * from one to the next without waiting for the main thread. They wait their turn there
 * as they would in the queue — one request at a time per interpreter — and whatever
 * happens to that worker, a request that has not started there runs elsewhere: when
 * another worker goes idle, when its worker dies or retires, and never after its
 * timeout or its client's departure.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from './support.ts';

let t: TestServer | undefined;
afterEach(async () => { await t?.close(); t = undefined; });

interface Probe { worker: number; served: number; mostAtOnce: number; body: string }
const probe = async (response: Promise<Response>) => {
  const answer = await response;
  expect(answer.status).toBe(200);
  return answer.json() as Promise<Probe>;
};
const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('prefetch', () => {
  it('an interpreter still runs one request at a time, in the order they came', async () => {
    t = await startTestServer(['/=test/fixtures/apps/overlap-probe.ts', '--workers', '1']);
    const answers = await Promise.all([0, 1, 2, 3].map(async (index) => {
      await pause(index * 10);
      return probe(fetch(`${t!.url}/?hold=100`));
    }));
    expect(answers.map((answer) => answer.mostAtOnce)).toEqual([1, 1, 1, 1]);
    expect(answers.map((answer) => answer.served)).toEqual([1, 2, 3, 4]);
  });

  it('a request waiting in a busy worker moves to a worker that goes idle (no wait behind a slow one)', async () => {
    t = await startTestServer(['/=test/fixtures/apps/overlap-probe.ts', '--workers', '2']);
    let slowDone = false;
    const slow = probe(fetch(`${t.url}/?hold=3000`)).then((answer) => { slowDone = true; return answer; });
    await pause(50);
    const short = probe(fetch(`${t.url}/?hold=200`));
    await pause(50);
    // Both workers are busy: this one waits in one of them, and runs as soon as either is free.
    const next = await probe(fetch(`${t.url}/`));
    expect(slowDone).toBe(false);
    expect(next.worker).toBe((await short).worker);
    expect((await slow).worker).not.toBe(next.worker);
  });

  it('a request waiting in a worker that dies runs on its replacement, body and all', async () => {
    t = await startTestServer(['/=test/fixtures/apps/overlap-probe.ts', '--workers', '1']);
    const dying = fetch(`${t.url}/?exit=1`);
    await pause(10);
    const waiting = probe(fetch(`${t.url}/`, { method: 'POST', body: 'the body, sent again' }));
    expect((await dying).status).toBe(502);
    const answer = await waiting;
    expect(answer.body).toBe('the body, sent again');
    expect(answer.served).toBe(1);
  });

  it('with --max-requests 1, requests waiting in a retiring worker run in fresh ones', async () => {
    t = await startTestServer(['/=test/fixtures/apps/overlap-probe.ts', '--workers', '1', '--max-requests', '1', '--max-requests-jitter', '0']);
    const answers = await Promise.all([0, 1, 2, 3].map(async (index) => {
      await pause(index * 5);
      return probe(fetch(`${t!.url}/?hold=50`));
    }));
    expect(answers.map((answer) => answer.served)).toEqual([1, 1, 1, 1]);
    expect(new Set(answers.map((answer) => answer.worker)).size).toBe(4);
  });

  it('a request still waiting in a worker at its --timeout gets 504 and never runs', async () => {
    t = await startTestServer(['/=test/fixtures/apps/overlap-probe.ts', '--workers', '1', '--timeout', '0.5']);
    const running = fetch(`${t.url}/?hold=700`);
    await pause(20);
    // Waits behind a request of 700 ms: its 0.5 s run out before its turn comes.
    const waiting = await fetch(`${t.url}/`);
    expect(waiting.status).toBe(504);
    expect(await waiting.text()).toContain('INTERPOOL_ERR_TIMEOUT');
    expect((await running).status).toBe(504);
    // The interpreter saw the first request and this one, never the one that timed out waiting.
    expect((await probe(fetch(`${t.url}/`))).served).toBe(2);
  });

  it('a client that leaves while its request waits in a worker: the request never runs', async () => {
    t = await startTestServer(['/=test/fixtures/apps/overlap-probe.ts', '--workers', '1']);
    const running = probe(fetch(`${t.url}/?hold=300`));
    await pause(20);
    const leaving = new AbortController();
    const abandoned = fetch(`${t.url}/`, { signal: leaving.signal }).catch(() => 'aborted');
    await pause(50);
    leaving.abort();
    expect(await abandoned).toBe('aborted');
    expect((await running).served).toBe(1);
    expect((await probe(fetch(`${t.url}/`))).served).toBe(2);
  });
});
