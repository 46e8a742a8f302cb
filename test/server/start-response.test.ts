// startResponse, excInfo, write() and close(), as PEP 3333 defines them for JS apps.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getRequest, headerOf, rawRequest, startTestServer, waitFor, type TestServer } from './support.ts';

let t: TestServer;
let dir: string;
let fileCount = 0;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'interpool-close-'));
  t = await startTestServer([
    '/twice=test/fixtures/apps/second-start-response.ts',
    '/before=test/fixtures/apps/exc-info-before-headers.ts',
    '/after=test/fixtures/apps/exc-info-after-headers.ts',
    '/shapes=test/fixtures/apps/body-shapes.ts',
    '/close=test/fixtures/apps/records-close.ts',
    '/fast=test/fixtures/apps/streams-fast.ts',
    '--workers', '1',
  ]);
});
afterAll(async () => {
  await t?.close();
  rmSync(dir, { recursive: true, force: true });
});

/** A fresh file for one request's close() record, and a reader for it. */
function recordFile(): { path: string; lines: () => string[] } {
  const path = join(dir, `record-${++fileCount}.txt`);
  return { path, lines: () => { try { return readFileSync(path, 'utf8').trim().split('\n'); } catch { return []; } } };
}

/** Resolves once the socket has received `text`. */
function receivedText(socket: Socket, text: string): Promise<void> {
  let seen = '';
  return new Promise((resolve) => {
    const onData = (data: Buffer) => {
      seen += data.toString('latin1');
      if (!seen.includes(text)) return;
      socket.off('data', onData);
      resolve();
    };
    socket.on('data', onData);
  });
}

describe('startResponse', () => {
  it('a second call without excInfo is an error: 500', async () => {
    const response = await rawRequest(t.port, getRequest('/twice'));
    expect(response.status).toBe(500);
    expect(response.body.toString()).not.toContain('should never be sent');
    const line = await waitFor(() => t.logs.find((l) => l.app === '/twice' && l.status === 500), 5000, 'the error log line');
    // Thrown inside the app, which did not catch it: the app's error, stack in the log.
    expect(String(line.detail)).toMatch(/^Error: startResponse was called a second time without excInfo/);
  });

  it('with excInfo before headers were sent, the new status and headers replace the old', async () => {
    const response = await rawRequest(t.port, getRequest('/before'));
    expect(response.statusLine).toBe('HTTP/1.1 503 Try Later');
    expect(headerOf(response, 'x-replaced')).toBe('yes');
    expect(headerOf(response, 'x-original')).toBeUndefined();
    expect(response.body.toString()).toBe('replaced body\n');
  });

  it('with excInfo after headers were sent, the error is rethrown and the connection aborted', async () => {
    const response = await rawRequest(t.port, getRequest('/after'));
    expect(response.statusLine).toBe('HTTP/1.1 200 OK');
    expect(response.body.toString()).toBe('first chunk\n');
    expect(response.truncated).toBe(true);
    expect(response.raw.toString()).not.toContain('never sent');
    const line = await waitFor(() => t.logs.find((l) => l.app === '/after' && l.path === '/after'), 5000, 'the access line');
    expect(line.aborted).toBe(true);
  });

  it('write() before returning sends its data first, then the returned chunks', async () => {
    const response = await rawRequest(t.port, getRequest('/shapes?shape=write'));
    expect(response.body.toString()).toBe('hello, world\n');
    expect(response.truncated).toBe(false);
  });
});

describe('close() of the returned iterable', () => {
  it('is called once, after the last chunk', async () => {
    const record = recordFile();
    const response = await rawRequest(t.port, getRequest(`/close?mode=complete&record=${encodeURIComponent(record.path)}`));
    expect(response.body.toString()).toBe('chunk 1\nchunk 2\nchunk 3\n');
    expect(await waitFor(() => record.lines().includes('close') && record.lines(), 5000, 'close()')).toEqual(['chunk 1', 'chunk 2', 'chunk 3', 'close']);
  });

  it('is called when the app throws mid-iteration (and the connection is aborted)', async () => {
    const record = recordFile();
    const response = await rawRequest(t.port, getRequest(`/close?mode=raise&record=${encodeURIComponent(record.path)}`));
    expect(response.status).toBe(200);
    expect(response.truncated).toBe(true);
    expect(await waitFor(() => record.lines().includes('close') && record.lines(), 5000, 'close()')).toEqual(['chunk 1', 'close']);
  });

  it('is called when the app throws before any body (and the client gets 500)', async () => {
    const record = recordFile();
    const response = await rawRequest(t.port, getRequest(`/close?mode=raise-before&record=${encodeURIComponent(record.path)}`));
    expect(response.status).toBe(500);
    expect(await waitFor(() => record.lines().includes('close') && record.lines(), 5000, 'close()')).toEqual(['close']);
  });

  it('is called when the client disconnects mid-stream, and iteration stops', async () => {
    const record = recordFile();
    const socket = connect({ host: '127.0.0.1', port: t.port });
    socket.write(getRequest(`/close?mode=endless&record=${encodeURIComponent(record.path)}`));
    await receivedText(socket, 'chunk 2');
    socket.destroy();
    const lines = await waitFor(() => record.lines().includes('close') && record.lines(), 5000, 'close()');
    expect(lines.filter((line) => line === 'close')).toHaveLength(1);
    // The app's one interpreter serves the next request: it has let go of the iteration.
    const next = recordFile();
    expect((await rawRequest(t.port, getRequest(`/close?mode=complete&record=${encodeURIComponent(next.path)}`))).status).toBe(200);
    // Production stopped: nothing resumed the iteration after close(); a step already
    // under way (waiting for its next chunk) may still finish, making one chunk more.
    const afterClose = record.lines().slice(record.lines().indexOf('close') + 1);
    expect(afterClose).not.toContain('next after close');
    expect(afterClose.length).toBeLessThanOrEqual(1);
  });

  it('is called when the client disconnects while the app waits between chunks', async () => {
    const record = recordFile();
    const socket = connect({ host: '127.0.0.1', port: t.port });
    socket.write(getRequest(`/close?mode=stalls&record=${encodeURIComponent(record.path)}`));
    await receivedText(socket, 'chunk 1');
    await waitFor(() => record.lines().some((line) => line.startsWith('worker')), 5000, 'the app to stall');
    socket.destroy();
    // The app would produce its next chunk only in a minute: close() must not wait for it.
    const lines = await waitFor(() => record.lines().includes('close') && record.lines(), 5000, 'close()');
    expect(lines.filter((line) => line.startsWith('chunk'))).toEqual(['chunk 1']);
  });

  it('the worker serves the next request after a disconnect', async () => {
    const response = await rawRequest(t.port, getRequest('/shapes?shape=list'));
    expect(response.body.toString()).toBe('hello, world\n');
  });
});

// Flow control: when res.write() reports a full socket, the worker producing the body
// is paused (ControlSlot.PAUSED) until 'drain', so a client that does not read cannot
// make a fast app stream its whole body into the server's memory.
describe('backpressure', () => {
  let timed: TestServer;
  beforeAll(async () => {
    timed = await startTestServer(['/fast=test/fixtures/apps/streams-fast.ts', '--workers', '1', '--timeout', '2']);
  });
  afterAll(() => timed?.close());

  it('a client that does not read holds a fast app back until --timeout ends the request', async () => {
    const record = recordFile();
    const socket = connect({ host: '127.0.0.1', port: timed.port });
    socket.pause();
    // 64 MiB that the client never reads: held back, the app cannot finish it, and its
    // request ends at --timeout, which calls close(); an app not held back would finish
    // (close() after the last chunk) long before.
    const chunks = 1024;
    socket.write(getRequest(`/fast?chunks=${chunks}&record=${encodeURIComponent(record.path)}`));
    try {
      const line = await waitFor(() => record.lines().find((each) => each.startsWith('produced')), 20_000, 'close()');
      expect(Number(line.split(' ')[1])).toBeLessThan(chunks);
      const access = await waitFor(() => timed.logs.find((each) => each.path === '/fast'), 5000, 'the access line');
      expect(access).toMatchObject({ code: 'INTERPOOL_ERR_TIMEOUT', aborted: true });
    } finally {
      socket.destroy();
    }
  });
});
