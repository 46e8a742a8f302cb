/**
 * Prefetch: a busy worker is handed its next requests while it runs one, so that it goes
 * from one to the next without waiting for the main thread. They wait their turn there
 * as they would in the queue — one request at a time per interpreter — and whatever
 * happens to that worker, a request that has not started there runs elsewhere: when
 * another worker goes idle, when its worker dies or retires, and never after its
 * timeout or its client's departure.
 *
 * Events are ordered by gates (test/server/gates.ts): a request holds in the app until
 * the test opens its gate, and the test sends the next request only once the server
 * counts the previous one as waiting. No sleeps.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { fileGate, type FileGate } from './gates.ts';
import { startTestServer, waitFor, type TestServer } from './support.ts';

const PROBE = '/=test/fixtures/apps/overlap-probe.ts';

let t: TestServer | undefined;
let dir: string;
beforeEach(() => { dir = mkdtempSync(join(tmpdir(), 'interpool-prefetch-')); });
afterEach(async () => {
  await t?.close();
  t = undefined;
  rmSync(dir, { recursive: true, force: true });
});

interface Probe { worker: number; served: number; mostAtOnce: number; body: string }
const probe = async (response: Promise<Response>) => {
  const answer = await response;
  expect(answer.status).toBe(200);
  return answer.json() as Promise<Probe>;
};
const gate = (name: string) => fileGate(dir, name);

/** Requests waiting for an interpreter: queued, or offered to a busy worker. */
const waiting = () => t!.server.groups[0]!.stats().queue;
const untilWaiting = (count: number) => waitFor(() => waiting() === count, 20_000, `${count} request(s) waiting`);

/** Send one request per gate, each once the one before it runs or waits: they arrive in this order. */
async function sendInOrder(gates: FileGate[], path = '/'): Promise<Promise<Probe>[]> {
  const answers: Promise<Probe>[] = [];
  for (const [index, each] of gates.entries()) {
    answers.push(probe(fetch(`${t!.url}${path}?${each.query}`)));
    if (index === 0) await each.entered();
    else await untilWaiting(index);
  }
  return answers;
}

/** Open the gates one by one, each once its request runs: fails if they run in another order. */
async function releaseInOrder(gates: FileGate[]): Promise<void> {
  for (const each of gates) {
    await each.entered();
    each.open();
  }
}

describe('prefetch', () => {
  it('an interpreter still runs one request at a time, in the order they came', async () => {
    t = await startTestServer([PROBE, '--workers', '1']);
    const gates = ['a', 'b', 'c', 'd'].map(gate);
    const answers = await sendInOrder(gates);
    // While the first holds, the other three wait (offered to its worker, or queued): none started.
    expect(gates.map((each) => each.isEntered())).toEqual([true, false, false, false]);
    await releaseInOrder(gates);
    const done = await Promise.all(answers);
    expect(done.map((answer) => answer.mostAtOnce)).toEqual([1, 1, 1, 1]);
    expect(done.map((answer) => answer.served)).toEqual([1, 2, 3, 4]);
  });

  it('a request waiting in a busy worker moves to a worker that goes idle (no wait behind a slow one)', async () => {
    t = await startTestServer([PROBE, '--workers', '2']);
    const slowGate = gate('slow');
    const shortGate = gate('short');
    let slowDone = false;
    const slow = probe(fetch(`${t.url}/?${slowGate.query}`)).then((answer) => { slowDone = true; return answer; });
    await slowGate.entered();
    const short = probe(fetch(`${t.url}/?${shortGate.query}`));
    await shortGate.entered();
    // Both workers are busy: this one waits in one of them, and runs as soon as either is free.
    const next = probe(fetch(`${t.url}/`));
    await untilWaiting(1);
    shortGate.open();
    const shortAnswer = await short;
    expect((await next).worker).toBe(shortAnswer.worker);
    expect(slowDone).toBe(false);
    slowGate.open();
    expect((await slow).worker).not.toBe(shortAnswer.worker);
  });

  it('a request waiting in a worker that dies runs on its replacement, body and all', async () => {
    t = await startTestServer([PROBE, '--workers', '1']);
    const dyingGate = gate('dying');
    const dying = fetch(`${t.url}/?exit=1&${dyingGate.query}`);
    await dyingGate.entered();
    const waitingAnswer = probe(fetch(`${t.url}/`, { method: 'POST', body: 'the body, sent again' }));
    // With one worker, busy, and nothing queued, the request is offered to that worker.
    await untilWaiting(1);
    dyingGate.open();
    expect((await dying).status).toBe(502);
    const answer = await waitingAnswer;
    expect(answer.body).toBe('the body, sent again');
    expect(answer.served).toBe(1);
  });

  it('with --max-requests 1, requests waiting in a retiring worker run in fresh ones', async () => {
    t = await startTestServer([PROBE, '--workers', '1', '--max-requests', '1', '--max-requests-jitter', '0']);
    const gates = ['a', 'b', 'c', 'd'].map(gate);
    const answers = await sendInOrder(gates);
    // All at once: the order in which the retiring worker's offers run elsewhere is not
    // asserted here (test/unit/pool/ holds the scheduler's requeue order).
    for (const each of gates) each.open();
    const done = await Promise.all(answers);
    expect(done.map((answer) => answer.served)).toEqual([1, 1, 1, 1]);
    expect(new Set(done.map((answer) => answer.worker)).size).toBe(4);
  });

  it('a request still waiting in a worker at its --timeout gets 504 and never runs', async () => {
    // --timeout-grace 60: the held request is not terminated while the test holds it.
    t = await startTestServer([PROBE, '--workers', '1', '--timeout', '0.5', '--timeout-grace', '60']);
    const runningGate = gate('running');
    const running = fetch(`${t.url}/?${runningGate.query}`);
    await runningGate.entered();
    // Waits behind a request the test holds: its 0.5 s run out before its turn comes.
    const late = await fetch(`${t.url}/`);
    expect(late.status).toBe(504);
    expect(await late.text()).toContain('INTERPOOL_ERR_TIMEOUT');
    expect((await running).status).toBe(504);
    expect(waiting()).toBe(0);
    runningGate.open();
    // The interpreter saw the first request and this one, never the one that timed out waiting.
    expect((await waitFor(async () => {
      const response = await fetch(`${t!.url}/`);
      return response.status === 200 && (await response.json()) as Probe;
    }, 20_000, 'the interpreter to serve again')).served).toBe(2);
  });

  it('a client that leaves while its request waits in a worker: the request never runs', async () => {
    t = await startTestServer([PROBE, '--workers', '1']);
    const runningGate = gate('running');
    const running = probe(fetch(`${t.url}/?${runningGate.query}`));
    await runningGate.entered();
    const leaving = new AbortController();
    const abandoned = fetch(`${t.url}/`, { signal: leaving.signal }).catch(() => 'aborted');
    await untilWaiting(1);
    leaving.abort();
    expect(await abandoned).toBe('aborted');
    // The server takes it back before the worker is free.
    await untilWaiting(0);
    runningGate.open();
    expect((await running).served).toBe(1);
    expect((await probe(fetch(`${t.url}/`))).served).toBe(2);
  });
});
