// Shutdown and keep-alive: once the server is shutting down, every response it still
// writes says Connection: close and its connection is closed after it, so no client is
// told to reuse a socket the server is about to close (it would get a reset, not an
// answer). A request that arrives during the drain gets 503 with Connection: close; new
// connections are no longer accepted at all. The app is held at a gate while shutdown begins.
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { headerOf, parseRawResponse, startTestServer, waitFor, type RawResponse, type TestServer } from './support.ts';

const APP = ['/=test/fixtures/apps/waits-for-gate.ts', '--workers', '1', '--graceful-timeout', '20'];
let dir: string;
let t: TestServer | undefined;

beforeAll(() => { dir = mkdtempSync(join(tmpdir(), 'interpool-shutdown-')); });
afterAll(() => rmSync(dir, { recursive: true, force: true }));
afterEach(async () => { await t?.close(); t = undefined; });

/** A raw keep-alive connection: write bytes, and read everything until the server closes it. */
function openConnection(port: number): { socket: Socket; closed: Promise<RawResponse[]> } {
  const socket = connect({ host: '127.0.0.1', port });
  socket.setNoDelay(true);
  const parts: Buffer[] = [];
  const closed = new Promise<RawResponse[]>((resolve) => {
    socket.on('data', (chunk: Buffer) => parts.push(chunk));
    socket.on('error', () => {});
    socket.on('close', () => resolve(splitResponses(Buffer.concat(parts))));
  });
  return { socket, closed };
}

/** Responses with a Content-Length, one after another. */
function splitResponses(raw: Buffer): RawResponse[] {
  const responses: RawResponse[] = [];
  let rest = raw;
  while (rest.length > 0) {
    const response = parseRawResponse(rest);
    const length = Number(headerOf(response, 'content-length') ?? 0);
    const end = rest.indexOf('\r\n\r\n') + 4 + length;
    responses.push(parseRawResponse(rest.subarray(0, end)));
    if (end <= 3) break;
    rest = rest.subarray(end);
  }
  return responses;
}

/** Begin shutting down (as SIGTERM does) and wait until the listener is closed; `closed` settles when shutdown is over. */
async function beginShutdown(server: TestServer): Promise<{ closed: Promise<void> }> {
  const closed = server.close();
  await waitFor(() => !server.server.fastify.server.listening, 5000, 'the listener to close');
  return { closed };
}

it('a response in flight when shutdown begins says Connection: close, and its connection is closed after it', async () => {
  t = await startTestServer(APP);
  const gate = join(dir, 'in-flight');
  const client = openConnection(t.port);
  client.socket.write(`GET /held?gate=${gate} HTTP/1.1\r\nHost: a\r\n\r\n`);
  await waitFor(() => existsSync(`${gate}.entered`), 10_000, 'the request to reach the app');
  const { closed } = await beginShutdown(t);
  writeFileSync(gate, '');
  const responses = await client.closed;
  expect(responses.map((response) => response.status)).toEqual([200]);
  expect(responses[0]!.body.toString()).toBe('GET /held\n');
  expect(headerOf(responses[0]!, 'connection')).toBe('close');
  await closed;
});

it('a request that arrives during the drain, on a connection opened before, gets 503 with Connection: close', async () => {
  t = await startTestServer(APP);
  const gate = join(dir, 'drain');
  // One request holds the drain open; the late one's head is half sent when shutdown begins.
  const holder = openConnection(t.port);
  holder.socket.write(`GET /held?gate=${gate} HTTP/1.1\r\nHost: a\r\n\r\n`);
  await waitFor(() => existsSync(`${gate}.entered`), 10_000, 'the holding request to reach the app');
  const late = openConnection(t.port);
  late.socket.write('GET /late HTTP/1.1\r\nHost: a\r\n');
  await waitFor(async () => (await connectionCount(t!)) === 2, 5000, 'both connections to be open');
  const { closed } = await beginShutdown(t);
  late.socket.write('\r\n');
  const [refused, ...more] = await late.closed;
  expect(more).toEqual([]);
  expect(refused!.status).toBe(503);
  expect(headerOf(refused!, 'connection')).toBe('close');
  expect(headerOf(refused!, 'retry-after')).toBe('5');
  expect(refused!.body.toString()).toBe('the server is shutting down (INTERPOOL_ERR_SHUTTING_DOWN)\n');
  // A new connection is not accepted at all: the listener is closed.
  const refusedConnection = await new Promise<string>((resolve) => {
    const socket = connect({ host: '127.0.0.1', port: t!.port });
    socket.on('connect', () => { socket.destroy(); resolve('connected'); });
    socket.on('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? 'error'));
  });
  expect(refusedConnection).toBe('ECONNREFUSED');
  writeFileSync(gate, '');
  const [held] = await holder.closed;
  expect(held!.status).toBe(200);
  expect(headerOf(held!, 'connection')).toBe('close');
  await closed;
});

function connectionCount(server: TestServer): Promise<number> {
  return new Promise((resolve, reject) => {
    server.server.fastify.server.getConnections((error, count) => (error ? reject(error) : resolve(count)));
  });
}
