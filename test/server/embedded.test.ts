/**
 * Embedded mode (--workers 0, mod_wsgi's embedded mode): one interpreter per app that
 * every concurrent request shares, as threads share one GIL. The other end of the
 * benchmark that pools of interpreters are measured against. Requests are held in the
 * app by file gates (gates.ts), so that they overlap by construction, not by timing.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { fileGate } from './gates.ts';
import { startTestServer, type TestServer } from './support.ts';

let t: TestServer | undefined;
let dir: string;
beforeEach(() => { dir = mkdtempSync(join(tmpdir(), 'interpool-embedded-')); });
afterEach(async () => {
  await t?.close();
  t = undefined;
  rmSync(dir, { recursive: true, force: true });
});

interface Probe { worker: number; served: number; mostAtOnce: number }
const json = async (url: string) => {
  const response = await fetch(url);
  expect(response.status).toBe(200);
  return response.json() as Promise<Probe>;
};

/** Start `count` requests held at gates, resolve once every one of them is running, then let them all go. */
async function heldTogether(count: number): Promise<Probe[]> {
  const gates = Array.from({ length: count }, (_, index) => fileGate(dir, `held-${index}`));
  const answers = gates.map((gate) => json(`${t!.url}/?${gate.query}`));
  for (const gate of gates) await gate.entered();
  for (const gate of gates) gate.open();
  return Promise.all(answers);
}

describe('--workers 0', () => {
  it('serves every request from one interpreter, concurrent requests overlapping in it', async () => {
    t = await startTestServer(['/=test/fixtures/apps/overlap-probe.ts', '--workers', '0']);
    // All four are running in the app at once before any is let go.
    const answers = await heldTogether(4);
    expect(new Set(answers.map((answer) => answer.worker)).size).toBe(1);
    expect(answers.map((answer) => answer.served).sort()).toEqual([1, 2, 3, 4]);
    expect(Math.max(...answers.map((answer) => answer.mostAtOnce))).toBe(4);
    const stats = t.server.groups[0]!.stats();
    expect(stats.workers).toMatchObject({ min: 1, max: 1, now: 1 });
  });

  it('still recycles: the interpreter is replaced once its concurrent requests are done', async () => {
    t = await startTestServer(['/=test/fixtures/apps/overlap-probe.ts', '--workers', '0', '--max-requests', '2']);
    const first = await heldTogether(2);
    expect(first.map((answer) => answer.served).sort()).toEqual([1, 2]);
    expect(first[0]!.worker).toBe(first[1]!.worker);
    const next = await json(`${t.url}/`);
    expect(next.worker).not.toBe(first[0]!.worker);
    expect(next.served).toBe(1);
  });
});
