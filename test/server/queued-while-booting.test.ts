/**
 * Requests that arrive while one interpreter serves and its sibling is still booting:
 * more than the booted one can hold (one running, MAX_PREFETCH waiting in its claim
 * cells) wait in the pool's queue. They must reach the booted interpreter as it makes
 * room, not wait for the one that boots: here that one never finishes booting until the
 * test says so, so a request left waiting for it would never be answered.
 */
import { afterEach, expect, it } from 'vitest';
import { MAX_PREFETCH } from '../../runtime/protocol.ts';
import { GATED_APP, openGates } from './gates.ts';
import { startTestServer, waitFor, type TestServer } from './support.ts';

let t: TestServer | undefined;
afterEach(async () => { await t?.close(); t = undefined; });

it('requests beyond what the booted interpreter holds are served by it while its sibling is still booting', async () => {
  const gates = openGates({ boot: 'ok' });
  t = await startTestServer([`/=${GATED_APP}`, '--workers', '2']);
  const group = t.server.groups[0]!;
  const idle = () => group.stats().interpreters.filter((view) => view.state === 'idle');
  const [, second] = await waitFor(() => idle().length === 2 && idle(), 30_000, 'both interpreters to boot');

  // The second interpreter is replaced, and its replacement holds at its import.
  gates.set('boot', 'hold');
  group.recycle(second!.workerId);
  await waitFor(() => gates.bootsHeld() >= 1, 30_000, 'the replacement to hold at its import');

  const total = 1 + MAX_PREFETCH + 4;
  const answers = Array.from({ length: total }, () => fetch(`${t!.url}/?hold=open`).then(async (response) => ({ status: response.status, body: await response.text() })));
  await waitFor(() => { const stats = group.stats(); return stats.inFlight + stats.queue >= total; }, 30_000, `all ${total} requests to arrive`);

  gates.set('open');
  const settled = await Promise.all(answers);
  expect(settled.map((answer) => answer.status)).toEqual(Array(total).fill(200));
  expect(settled.every((answer) => answer.body.endsWith('end\n'))).toBe(true);
  // Answered while the replacement still holds at its import: none waited for it.
  expect(group.stats().interpreters.some((view) => view.state === 'booting')).toBe(true);
  gates.set('boot', 'ok');
}, 90_000);
