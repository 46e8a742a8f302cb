// Requests wait for a free interpreter, and one whose client gave up while it waited
// never reaches the app.
import { connect } from 'node:net';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ask, GATED_APP, holdResponse, openGates } from './gates.ts';
import { getRequest, rawRequest, startTestServer, waitFor, type TestServer } from './support.ts';

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
  // The only interpreter is held busy by a response the test releases.
  const gates = openGates({ version: 'v1' });
  const gated = await startTestServer([`/=${GATED_APP}`, '--workers', '1']);
  try {
    const group = gated.server.groups[0]!;
    const held = await holdResponse(`${gated.url}/`, 'released');
    const socket = connect({ host: '127.0.0.1', port: gated.port });
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
    socket.write(getRequest('/'));
    await waitFor(() => group.stats().queue === 1, 10_000, 'the request to wait');
    socket.destroy();
    await waitFor(() => group.stats().queue === 0, 10_000, 'the abandoned request to leave');
    gates.set('released');
    expect(await held.rest).toBe('end\n');
    // The held one was the first; the abandoned request never ran, so this one is the second.
    expect((await ask(`${gated.url}/`)).served).toBe(2);
    const ok = await rawRequest(gated.port, getRequest('/'));
    expect(ok.status).toBe(200);
  } finally {
    await gated.close();
  }
});
