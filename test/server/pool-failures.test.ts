// Failures around the pool: a body over --body-limit never reaches a worker, a worker
// that exits mid-request gives 502 and is replaced while other requests carry on, and a
// request past --timeout gives 504 and the app serves again afterwards. Events are
// ordered by file gates (the apps take ?gate=PATH, see gates.ts), never by sleeps.
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fileGate, type FileGate } from './gates.ts';
import { getRequest, parseRawResponse, rawRequest, startTestServer, waitFor, type RawResponse, type TestServer } from './support.ts';

let limited: TestServer;
let exiting: TestServer;
let timing: TestServer;
let untimed: TestServer;
let stalling: TestServer;
let dir: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'interpool-pool-failures-'));
  [limited, exiting, timing, untimed, stalling] = await Promise.all([
    startTestServer(['/=test/fixtures/apps/counter.ts', '--workers', '1', '--body-limit', '1024']),
    startTestServer(['/=test/fixtures/apps/exits-mid-request.ts', '/timer=test/fixtures/apps/throws-in-timer.ts', '--workers', '2']),
    startTestServer(['/=test/fixtures/apps/spins-on-request.ts', '/other=test/fixtures/apps/counter.ts', '--workers', '1', '--timeout', '1', '--timeout-grace', '0.5']),
    startTestServer(['/=test/fixtures/apps/spins-on-request.ts', '/other=test/fixtures/apps/counter.ts', '--workers', '1', '--timeout', '0']),
    startTestServer(['/=test/fixtures/apps/records-close.ts', '--workers', '1', '--timeout', '1', '--timeout-grace', '3']),
  ]);
});
afterAll(async () => {
  await Promise.all([limited?.close(), exiting?.close(), timing?.close(), untimed?.close(), stalling?.close()]);
  rmSync(dir, { recursive: true, force: true });
});

let gates = 0;
const gate = (): FileGate => fileGate(dir, `gate-${++gates}`);

/** Like rawRequest, but open `gate` once the client has received `text`: the app goes on only then. */
function rawRequestOpening(port: number, request: string, text: string, opens: FileGate): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port });
    const parts: Buffer[] = [];
    socket.on('data', (data: Buffer) => {
      parts.push(data);
      if (Buffer.concat(parts).includes(text)) opens.open();
    });
    socket.on('error', (error: NodeJS.ErrnoException) => { if (error.code !== 'ECONNRESET') reject(error); });
    socket.on('close', () => resolve(parseRawResponse(Buffer.concat(parts))));
    socket.write(request);
  });
}

/** Both of the app's workers are up and idle (a replacement has booted). */
const bothIdle = (server: TestServer) => waitFor(() => {
  const { interpreters } = server.server.groups[0]!.stats();
  return interpreters.length === 2 && interpreters.every((interpreter) => interpreter.state === 'idle');
}, 20_000, 'two idle workers');

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
    expect(before.worker).toBeGreaterThan(0);
    const slowGate = gate();
    const slow = fetch(`${exiting.url}/?${slowGate.query}`);
    await slowGate.entered();
    // One worker holds the slow request: this one goes to the other, which dies.
    const dying = await fetch(`${exiting.url}/?exit=1`);
    expect(dying.status).toBe(502);
    expect(await dying.text()).toMatch(/INTERPOOL_ERR_WORKER_DIED/);
    slowGate.open();
    const survived = await slow;
    expect(survived.status).toBe(200);
    // A replacement starts: the app answers again, from both workers at once.
    await bothIdle(exiting);
    const heldGate = gate();
    const held = fetch(`${exiting.url}/?${heldGate.query}`);
    await heldGate.entered();
    const other = await fetch(`${exiting.url}/`);
    expect(other.status).toBe(200);
    heldGate.open();
    const first = (await (await held).json()) as { worker: number };
    expect(((await other.json()) as { worker: number }).worker).not.toBe(first.worker);
    const line = await waitFor(() => exiting.logs.find((l) => l.status === 502), 5000, 'the 502 log line');
    expect(line.code).toBe('INTERPOOL_ERR_WORKER_DIED');
  });

  it('after its headers went out: the connection is aborted, and the app keeps serving', async () => {
    const afterChunk = gate();
    const response = await rawRequestOpening(exiting.port, getRequest(`/?exit=after-chunk&${afterChunk.query}`), 'first chunk', afterChunk);
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
    const trigger = join(dir, 'throw-now');
    const armed = await fetch(`${exiting.url}/timer?arm=${encodeURIComponent(trigger)}`);
    expect(armed.status).toBe(200);
    const { worker } = (await armed.json()) as { worker: number };
    // The response is complete: the worker is idle when it throws.
    writeFileSync(trigger, '');
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

describe('a worker that dies with a request posted to it and not yet read', () => {
  let single: TestServer;
  beforeAll(async () => {
    single = await startTestServer(['/=test/fixtures/apps/throws-in-timer.ts', '--workers', '1']);
  });
  afterAll(() => single?.close());

  it('runs the request on its replacement: the app never saw it, so no 502', async () => {
    const blocked = join(dir, 'blocked');
    const armed = await fetch(`${single.url}/?block=${encodeURIComponent(blocked)}`);
    const { worker } = (await armed.json()) as { worker: number };
    // The worker is now idle as the pool sees it, and its thread is held in a timer.
    await waitFor(() => existsSync(`${blocked}.entered`), 10_000, 'the worker to block');
    const pending = fetch(`${single.url}/`);
    const inFlight = async () => ((await (await fetch(`${single.url}/_interpool/api/stats`)).json()) as { apps: { inFlight: number }[] }).apps[0]!.inFlight;
    await waitFor(async () => (await inFlight()) === 1, 10_000, 'the request to be handed to the blocked worker');
    writeFileSync(blocked, '');
    const answer = await pending;
    expect(answer.status).toBe(200);
    expect(((await answer.json()) as { worker: number }).worker).not.toBe(worker);
    expect(single.logs.some((line) => line.status === 502)).toBe(false);
  });
});

describe('--timeout', () => {
  it('a spinning app does not hold up another app', async () => {
    // No --timeout here: the app spins, never yielding its thread, until the test lets it stop.
    const spinGate = gate();
    let spinDone = false;
    const spinning = fetch(`${untimed.url}/?spin=1&${spinGate.query}`).then((r) => { spinDone = true; return r; });
    await spinGate.entered();
    const other = await fetch(`${untimed.url}/other`);
    expect(other.status).toBe(200);
    expect(spinDone).toBe(false);
    spinGate.open();
    expect((await spinning).status).toBe(200);
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
    const afterChunk = gate();
    const response = await rawRequestOpening(timing.port, getRequest(`/?spin=after-chunk&${afterChunk.query}`), 'first chunk', afterChunk);
    expect(response.status).toBe(200);
    expect(response.body.toString()).toBe('first chunk\n');
    expect(response.truncated).toBe(true);
    await servesAgain(timing.url);
  });
});

describe('--timeout while the app waits between chunks', () => {
  it('aborts the response, calls close(), and keeps the interpreter', async () => {
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
  });
});
