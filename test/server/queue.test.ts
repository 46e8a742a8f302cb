// Requests wait for a free interpreter, and one whose client gave up while it waited
// never reaches the app.
import { connect } from 'node:net';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { getRequest, rawRequest, startTestServer, type TestServer } from './support.ts';

let t: TestServer;

beforeAll(async () => {
  t = await startTestServer(['/=test/fixtures/apps/counter.ts', '--workers', '1']);
});
afterAll(() => t?.close());

const served = async (query = ''): Promise<number> => ((await (await fetch(`${t.url}/${query}`)).json()) as { served: number }).served;

it('requests beyond the pool wait their turn and all complete', async () => {
  const start = await served();
  const answers = await Promise.all(Array.from({ length: 5 }, () => served('?hold=50')));
  expect([...answers].sort((a, b) => a - b)).toEqual([1, 2, 3, 4, 5].map((n) => start + n));
});

it('a queued request whose client disconnects is never run', async () => {
  const before = await served();
  // Occupy the only worker, then queue a request and hang up on it.
  const busy = fetch(`${t.url}/?hold=400`);
  await new Promise((resolve) => setTimeout(resolve, 50));
  const socket = connect({ host: '127.0.0.1', port: t.port });
  await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
  socket.write(getRequest('/?hold=0'));
  await new Promise((resolve) => setTimeout(resolve, 50));
  socket.destroy();
  expect((await busy).status).toBe(200);
  // busy was before + 1; the abandoned request never ran, so this one is before + 2.
  expect(await served()).toBe(before + 2);
  const ok = await rawRequest(t.port, getRequest('/'));
  expect(ok.status).toBe(200);
});
