// Failures around the pool: a body over --body-limit never reaches a worker, a worker
// that exits mid-request gives 502 and is replaced while other requests carry on, and a
// request past --timeout gives 504 and the app serves again afterwards.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getRequest, rawRequest, startTestServer, waitFor, type TestServer } from './support.ts';

let limited: TestServer;
let exiting: TestServer;
let timing: TestServer;
let stalling: TestServer;

beforeAll(async () => {
  [limited, exiting, timing, stalling] = await Promise.all([
    startTestServer(['/=test/fixtures/apps/counter.ts', '--workers', '1', '--body-limit', '1024']),
    startTestServer(['/=test/fixtures/apps/exits-mid-request.ts', '/timer=test/fixtures/apps/throws-in-timer.ts', '--workers', '2']),
    startTestServer(['/=test/fixtures/apps/spins-on-request.ts', '/other=test/fixtures/apps/counter.ts', '--workers', '1', '--timeout', '1', '--timeout-grace', '0.5']),
    startTestServer(['/=test/fixtures/apps/records-close.ts', '--workers', '1', '--timeout', '1', '--timeout-grace', '3']),
  ]);
});
afterAll(() => Promise.all([limited?.close(), exiting?.close(), timing?.close(), stalling?.close()]));

describe('--body-limit', () => {
  it('a body over the limit gets 413 and no worker ever sees it', async () => {
    const big = 'x'.repeat(2048);
    const declared = await rawRequest(limited.port,
      `POST / HTTP/1.1\r\nHost: localhost\r\nContent-Length: ${big.length}\r\nConnection: close\r\n\r\n${big}`);
    expect(declared.status).toBe(413);
    const chunked = await rawRequest(limited.port,
      `POST / HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n${(600).toString(16)}\r\n${'y'.repeat(600)}\r\n${(600).toString(16)}\r\n${'y'.repeat(600)}\r\n0\r\n\r\n`);
    expect(chunked.status).toBe(413);
    expect(declared.body.toString()).toMatch(/INTERPOOL_ERR_BODY_TOO_LARGE/);
    // The app counts every request it sees: this is its first.
    const counted = (await (await fetch(limited.url)).json()) as { served: number };
    expect(counted.served).toBe(1);
  });

  it('a body at the limit is accepted', async () => {
    const response = await fetch(limited.url, { method: 'POST', body: 'z'.repeat(1024) });
    expect(response.status).toBe(200);
  });
});

describe('a worker that exits mid-request', () => {
  it('gives 502, a concurrent request on the other worker completes, and the app keeps serving', async () => {
    const before = (await (await fetch(`${exiting.url}/`)).json()) as { worker: number };
    const slow = fetch(`${exiting.url}/?hold=700`);
    await new Promise((resolve) => setTimeout(resolve, 100));
    const dying = await fetch(`${exiting.url}/?exit=1`);
    expect(dying.status).toBe(502);
    expect(await dying.text()).toMatch(/INTERPOOL_ERR_WORKER_DIED/);
    const survived = await slow;
    expect(survived.status).toBe(200);
    // A replacement starts: the app answers again, from both workers over time.
    const workers = new Set<number>();
    for (let i = 0; i < 20 && workers.size < 2; i++) {
      const answers = await Promise.all([fetch(`${exiting.url}/?hold=50`), fetch(`${exiting.url}/?hold=50`)]);
      for (const answer of answers) {
        expect(answer.status).toBe(200);
        workers.add(((await answer.json()) as { worker: number }).worker);
      }
    }
    expect(workers.size).toBe(2);
    expect(before.worker).toBeGreaterThan(0);
    const line = await waitFor(() => exiting.logs.find((l) => l.status === 502), 5000, 'the 502 log line');
    expect(line.code).toBe('INTERPOOL_ERR_WORKER_DIED');
  });

  it('after its headers went out: the connection is aborted, and the app keeps serving', async () => {
    const response = await rawRequest(exiting.port, getRequest('/?exit=after-chunk'));
    expect(response.status).toBe(200);
    expect(response.body.toString()).toBe('first chunk\n');
    expect(response.truncated).toBe(true);
    expect((await fetch(`${exiting.url}/`)).status).toBe(200);
  });
});

/**
 * The answer of the first request that succeeds. A request sent while the spinning
 * worker is still being terminated and replaced waits in the queue, and its own
 * --timeout counts that wait: it may get 504 too, so try a few times.
 */
async function servesAgain(url: string): Promise<{ worker: number }> {
  return waitFor(async () => {
    const response = await fetch(url);
    return response.status === 200 && (await response.json()) as { worker: number };
  }, 15_000, 'the app to serve again');
}

describe('a worker that fails while idle', () => {
  it('is replaced, the server keeps running, and the app keeps serving', async () => {
    const armed = await fetch(`${exiting.url}/timer?arm=1`);
    expect(armed.status).toBe(200);
    const { worker } = (await armed.json()) as { worker: number };
    await waitFor(() => exiting.logs.find((l) => l.app === '/timer' && l.level === 50 && l.msg !== 'request'), 5000, 'the worker failure in the log');
    const seen = new Set<number>();
    for (let i = 0; i < 20 && seen.size < 2; i++) {
      const answers = await Promise.all([fetch(`${exiting.url}/timer`), fetch(`${exiting.url}/timer`)]);
      for (const answer of answers) {
        expect(answer.status).toBe(200);
        seen.add(((await answer.json()) as { worker: number }).worker);
      }
    }
    expect(seen.has(worker)).toBe(false);
  });
});

describe('--timeout', () => {
  it('a spinning app does not hold up another app', async () => {
    const order: string[] = [];
    const spinning = rawRequest(timing.port, getRequest('/?spin=1')).then((r) => { order.push('spinning'); return r; });
    await new Promise((resolve) => setTimeout(resolve, 100));
    const other = await fetch(`${timing.url}/other`);
    order.push('other');
    expect(other.status).toBe(200);
    expect((await spinning).status).toBe(504);
    expect(order).toEqual(['other', 'spinning']);
    await servesAgain(timing.url);
  });

  it('a spinning request gets 504, and the app serves again afterwards', async () => {
    const first = (await (await fetch(timing.url)).json()) as { worker: number };
    const spinning = await rawRequest(timing.port, getRequest('/?spin=1'));
    expect(spinning.status).toBe(504);
    expect(spinning.body.toString()).toMatch(/INTERPOOL_ERR_TIMEOUT/);
    const answer = await servesAgain(timing.url);
    // The spinning interpreter could not recover: it was replaced by a new worker.
    expect(answer.worker).not.toBe(first.worker);
    const line = await waitFor(() => timing.logs.find((l) => l.status === 504), 5000, 'the 504 log line');
    expect(line.code).toBe('INTERPOOL_ERR_TIMEOUT');
    expect(line.app).toBe('/');
  });

  it('after its headers went out: the connection is aborted, and the app serves again', async () => {
    const response = await rawRequest(timing.port, getRequest('/?spin=after-chunk'));
    expect(response.status).toBe(200);
    expect(response.body.toString()).toBe('first chunk\n');
    expect(response.truncated).toBe(true);
    await servesAgain(timing.url);
  });
});

describe('--timeout while the app waits between chunks', () => {
  it('aborts the response, calls close(), and keeps the interpreter', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'interpool-timeout-'));
    try {
      const record = join(dir, 'record.txt');
      const lines = () => { try { return readFileSync(record, 'utf8').trim().split('\n'); } catch { return []; } };
      const response = await rawRequest(stalling.port, getRequest(`/?mode=stalls&record=${encodeURIComponent(record)}`));
      expect(response.body.toString()).toBe('chunk 1\n');
      expect(response.truncated).toBe(true);
      await waitFor(() => lines().includes('close'), 5000, 'close()');
      const worker = lines().find((line) => line.startsWith('worker'));
      // The interpreter returned from its request: it is kept, not replaced.
      const next = join(dir, 'next.txt');
      await rawRequest(stalling.port, getRequest(`/?mode=complete&record=${encodeURIComponent(next)}`));
      const again = await rawRequest(stalling.port, getRequest(`/?mode=stalls&record=${encodeURIComponent(join(dir, 'again.txt'))}`));
      expect(again.truncated).toBe(true);
      expect(readFileSync(join(dir, 'again.txt'), 'utf8')).toContain(worker!);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
