// Slow clients never hold a worker and never starve others: a head that does not
// arrive within --headers-timeout gets 408 (slowloris), a body that does not arrive
// within --body-timeout gets 408, idle keep-alive connections are closed, and
// connections past --max-connections are turned away. Bounds here are generous: they
// tell "the timeout works" from "it never fires", not how fast anything is.
import { connect, type Socket } from 'node:net';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { dribble, exchange } from './hardening-support.ts';
import { startTestServer, waitFor, type TestServer } from './support.ts';

let t: TestServer;

beforeAll(async () => {
  t = await startTestServer(['/=test/fixtures/apps/environ-echo.ts', '--workers', '1',
    '--headers-timeout', '2', '--body-timeout', '4', '--keep-alive-timeout', '1']);
});
afterAll(() => t?.close());

const GET = 'GET /fast HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n';

describe('timeouts', () => {
  it.each([
    ['a head that stops halfway', 'GET /slow HTTP/1.1\r\nHost: a\r\n', /--headers-timeout \(2 s\)/],
    ['a connection that never sends a byte after the first', 'G', /--headers-timeout \(2 s\)/],
    ['a body that stops halfway', 'POST /slow HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\n0123456789', /--body-timeout \(4 s\)/],
    ['a chunked body that stops halfway', 'POST /slow HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\na\r\n0123456789\r\n', /--body-timeout \(4 s\)/],
  ])('%s: 408, then closed', async (_name, bytes, names) => {
    const { response, closedByServer } = await exchange(t.port, bytes, { waitMs: 15_000 });
    expect(closedByServer).toBe(true);
    expect(response.status).toBe(408);
    expect(response.body.toString('utf8')).toMatch(names);
    expect(response.body.toString('utf8')).toMatch(/\(INTERPOOL_ERR_REQUEST_TIMEOUT\)\n$/);
    expect(t.logs.some((line) => line.path === '/slow' && line.worker !== '-')).toBe(false);
  });

  it('slowloris: a head sent one byte at a time, forever, is cut off at --headers-timeout', async () => {
    const client = dribble(t.port, 'GET /slow HTTP/1.1\r\nHost: a\r\nX-Pad: ', 50);
    const written = await client.closed;
    expect(written).toMatch(/^HTTP\/1\.1 408 /);
    expect(written).toMatch(/--headers-timeout/);
  });

  it('a slow body, one byte at a time, is cut off at --body-timeout', async () => {
    const client = dribble(t.port, 'POST /slow HTTP/1.1\r\nHost: a\r\nContent-Length: 100000\r\n\r\n', 5);
    const written = await client.closed;
    expect(written).toMatch(/^HTTP\/1\.1 408 /);
    expect(written).toMatch(/--body-timeout/);
  });

  it('an idle keep-alive connection is closed after --keep-alive-timeout', async () => {
    const { statusLines, closedByServer } = await exchange(t.port, 'GET /fast HTTP/1.1\r\nHost: a\r\n\r\n', { waitMs: 10_000 });
    expect(statusLines).toEqual(['HTTP/1.1 200 OK']);
    expect(closedByServer).toBe(true);
  });
});

describe('a few hundred slowloris connections', () => {
  // A head timeout far beyond the test's length: the slow connections stay open all
  // along, so the normal requests below are served while they are held, not after.
  let patient: TestServer;
  beforeAll(async () => {
    patient = await startTestServer(['/=test/fixtures/apps/environ-echo.ts', '--workers', '1', '--headers-timeout', '600']);
  });
  afterAll(() => patient?.close());

  it('do not starve normal requests', async () => {
    const dribblers = Array.from({ length: 300 }, () => dribble(patient.port, 'GET /slow HTTP/1.1\r\nHost: a\r\nX-Pad: ', 20));
    try {
      await waitFor(() => dribblers.every((d) => d.socket.readyState === 'open'), 10_000, 'every slow connection to be open');
      const statuses: number[] = [];
      for (let i = 0; i < 20; i++) statuses.push((await exchange(patient.port, GET, { waitMs: 30_000 })).response.status);
      expect(statuses).toEqual(Array(20).fill(200));
      expect(dribblers.every((d) => d.socket.readyState === 'open')).toBe(true);
    } finally {
      for (const d of dribblers) d.stop();
    }
  }, 60_000);

  it('are each cut off with 408', async () => {
    const dribblers = Array.from({ length: 300 }, () => dribble(t.port, 'GET /slow HTTP/1.1\r\nHost: a\r\nX-Pad: ', 20));
    const written = await Promise.all(dribblers.map((d) => d.closed));
    expect(written.filter((text) => text.startsWith('HTTP/1.1 408 ')).length).toBe(300);
  }, 60_000);
});

describe('--max-connections', () => {
  let capped: TestServer;
  beforeAll(async () => {
    capped = await startTestServer(['/=test/fixtures/apps/environ-echo.ts', '--workers', '1', '--max-connections', '3']);
  });
  afterAll(() => capped?.close());

  it('connections past the cap are closed at once; room frees up when one closes', async () => {
    const held = await Promise.all([0, 1, 2].map(() => new Promise<ReturnType<typeof connect>>((resolve) => {
      const socket = connect({ host: '127.0.0.1', port: capped.port }, () => resolve(socket));
      socket.on('error', () => {});
    })));
    await waitFor(async () => (await connectionCount(capped)) === 3, 5000, 'three connections counted');
    const turnedAway = await exchange(capped.port, GET, { waitMs: 5000 });
    expect(turnedAway.closedByServer).toBe(true);
    expect(turnedAway.statusLines).toEqual([]);
    held[0]!.destroy();
    await waitFor(async () => (await connectionCount(capped)) < 3, 5000, 'a connection to be released');
    const served = await exchange(capped.port, GET);
    expect(served.response.status).toBe(200);
    for (const socket of held) socket.destroy();
  });
});

// At the cap, slots held by clients that send nothing useful are taken back, so that
// clients with a request get in; and the refusals are logged and counted. Here the cap is
// 4 and --headers-timeout 8 s, so at the cap a head has 2 s.
describe('at --max-connections', () => {
  let crowded: TestServer;
  beforeEach(async () => {
    crowded = await startTestServer(['/=test/fixtures/apps/environ-echo.ts', '--workers', '1', '--max-connections', '4',
      '--headers-timeout', '8', '--keep-alive-timeout', '60']);
  });
  afterEach(() => crowded?.close());

  /** Open `count` connections, each sending `bytes`, and wait until the server has read from every one. */
  async function fill(count: number, bytes: string): Promise<{ socket: Socket; closed: Promise<string> }[]> {
    const accepted: Socket[] = [];
    const onConnection = (socket: Socket) => accepted.push(socket);
    crowded.server.fastify.server.on('connection', onConnection);
    const clients = Array.from({ length: count }, () => {
      const socket = connect({ host: '127.0.0.1', port: crowded.port }, () => socket.write(bytes, 'latin1'));
      const parts: Buffer[] = [];
      socket.on('data', (chunk: Buffer) => parts.push(chunk));
      socket.on('error', () => {});
      return { socket, closed: new Promise<string>((resolve) => socket.on('close', () => resolve(Buffer.concat(parts).toString('latin1')))) };
    });
    await waitFor(() => accepted.length === count && accepted.every((socket) => socket.bytesRead >= bytes.length), 10_000, 'the server to read every connection');
    crowded.server.fastify.server.off('connection', onConnection);
    return clients;
  }

  it('slow heads holding every slot are cut off at a quarter of --headers-timeout; the refusal is logged and counted; a client with a request gets in', async () => {
    const refusedBefore = await refusedConnections(crowded);
    const slow = await fill(4, 'GET /slow HTTP/1.1\r\nHost: a\r\nX-Pad: ');
    const turnedAway = await exchange(crowded.port, GET, { waitMs: 5000 });
    expect(turnedAway.statusLines).toEqual([]);
    const written = await Promise.all(slow.map((client) => client.closed));
    for (const text of written) {
      expect(text).toMatch(/^HTTP\/1\.1 408 /);
      expect(text).toMatch(/the request head took longer than 2 s, --headers-timeout while the server is at --max-connections \(4\) \(INTERPOOL_ERR_REQUEST_TIMEOUT\)/);
    }
    const served = await exchange(crowded.port, GET);
    expect(served.response.status).toBe(200);
    const warning = crowded.logs.find((line) => line.level === 40 && /refusing connections: --max-connections \(4\) reached/.test(String(line.msg)));
    expect(warning).toMatchObject({ maxConnections: 4, refused: 1 });
    expect(await refusedConnections(crowded)).toBeGreaterThan(refusedBefore);
    // With room again, the head timeout is --headers-timeout once more.
    await waitFor(() => crowded.server.fastify.server.headersTimeout === 8000, 10_000, 'the head timeout to be restored');
    expect(crowded.logs.some((line) => line.msg === 'connections back under --max-connections')).toBe(true);
  }, 30_000);

  it('idle keep-alive connections holding every slot are closed to make room', async () => {
    const idle = await fill(4, 'GET /first HTTP/1.1\r\nHost: a\r\n\r\n');
    await waitFor(() => crowded.logs.filter((line) => line.path === '/first').length === 4, 10_000, 'the four first requests to be served');
    const turnedAway = await exchange(crowded.port, GET, { waitMs: 5000 });
    expect(turnedAway.statusLines).toEqual([]);
    const written = await Promise.all(idle.map((client) => client.closed));
    expect(written.every((text) => text.startsWith('HTTP/1.1 200 OK') && /Connection: keep-alive/i.test(text))).toBe(true);
    const served = await exchange(crowded.port, GET);
    expect(served.response.status).toBe(200);
  }, 30_000);
});

/** interpool_connections_refused_total, read from /_interpool/metrics on a connection of its own. */
async function refusedConnections(server: TestServer): Promise<number> {
  const { response } = await exchange(server.port, 'GET /_interpool/metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n');
  expect(response.status).toBe(200);
  const match = /^interpool_connections_refused_total (\d+)$/m.exec(response.body.toString('utf8'));
  expect(match).not.toBeNull();
  return Number(match![1]);
}

function connectionCount(server: TestServer): Promise<number> {
  return new Promise((resolve, reject) => {
    server.server.fastify.server.getConnections((error, count) => (error ? reject(error) : resolve(count)));
  });
}
