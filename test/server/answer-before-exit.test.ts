// A worker that posts its answer and then ends: the answer reaches the client, though the
// main thread, busy meanwhile, learns of the exit and finds the answer in the same turn
// (the exit comes on another channel than the worker's port, and is read first).
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { fileGate } from './gates.ts';
import { startTestServer, waitFor, type TestServer } from './support.ts';

let t: TestServer | undefined;
const dir = mkdtempSync(join(tmpdir(), 'interpool-answer-exit-'));
afterAll(async () => {
  await t?.close();
  rmSync(dir, { recursive: true, force: true });
});

/** This process's threads. */
const threads = () => readdirSync('/proc/self/task').length;

// Failed before: 502 INTERPOOL_ERR_WORKER_DIED (the pool failed the request on the exit,
// with its answer still unread on the worker's port).
it('an answer the worker posted before its thread ended reaches the client', async () => {
  t = await startTestServer(['/=test/fixtures/apps/answers-then-exits.ts', '--workers', '1']);
  const gate = fileGate(dir, 'answer');
  const response = fetch(`${t.url}/?${gate.query}`);
  await gate.entered();
  const before = threads();
  // The main thread (this one: the server runs in the test's process) is held, in a
  // bounded poll for a fact, until the worker has answered and its thread is gone.
  const held = new Int32Array(new SharedArrayBuffer(4));
  gate.open();
  const until = Date.now() + 30_000;
  while (threads() >= before && Date.now() < until) Atomics.wait(held, 0, 0, 5);
  expect(threads()).toBeLessThan(before);
  const answer = await response;
  expect(answer.status).toBe(200);
  expect(await answer.text()).toBe('answered\n');
  await waitFor(() => t!.server.groups[0]!.stats().exits.crashed >= 1, 10_000, 'the exit to be counted');
});
