// A refused request never overtakes the responses of the requests read before it on
// its connection: those ran (a POST's side effects happened), so their answers go out
// first, in order, then the refusal, then the close. The app is held at a gate until
// the refusal has been decided, so the refusal is always the one that could overtake.
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exchange } from './hardening-support.ts';
import { startTestServer, waitFor, type TestServer } from './support.ts';

let t: TestServer;
let dir: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'interpool-pipelining-'));
  t = await startTestServer(['/=test/fixtures/apps/waits-for-gate.ts', '--workers', '2']);
});
afterAll(async () => {
  await t?.close();
  rmSync(dir, { recursive: true, force: true });
});

let gates = 0;
const nextGate = () => join(dir, `gate-${++gates}`);
const held = (method: string, path: string, gate: string) =>
  `${method} ${path}?gate=${gate} HTTP/1.1\r\nHost: a\r\n${method === 'POST' ? 'Content-Length: 2\r\n\r\nok' : '\r\n'}`;

// [refused request, who refuses it, the status]
const refusals: [string, string, number][] = [
  ['Content-Length with Transfer-Encoding (Node\'s parser)', 'POST /refused HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n', 400],
  ['a bad chunk size (Node\'s parser, mid-body)', 'POST /refused HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n', 400],
  ['two Host headers (the request guard)', 'GET /refused HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n', 400],
  ['too many header fields (Node\'s parser)', `GET /refused HTTP/1.1\r\nHost: a\r\n${'X-A: b\r\n'.repeat(150)}\r\n`, 431],
];

describe('responses to requests read before a refused one', () => {
  it.each(refusals)('are all written, in order, before the refusal: %s', async (_name, refused, status) => {
    const first = nextGate();
    const second = nextGate();
    const done = exchange(t.port, held('GET', '/a', first) + held('POST', '/b', second) + refused);
    // Both requests run, and the refusal has been decided, before either may answer.
    await waitFor(() => existsSync(`${first}.entered`) && existsSync(`${second}.entered`), 10_000, 'both requests to reach the app');
    await waitFor(() => t.logs.some((line) => line.status === status && typeof line.code === 'string' && line.msg !== 'request' && !line.path), 5000, 'the refusal to be logged');
    writeFileSync(second, '');
    writeFileSync(first, '');
    const { response, statusLines, closedByServer } = await done;
    expect(statusLines).toEqual(['HTTP/1.1 200 OK', 'HTTP/1.1 200 OK', expect.stringMatching(new RegExp(`^HTTP/1\\.1 ${status} `))]);
    expect(response.raw.toString('latin1')).toMatch(/GET \/a\n[\s\S]*POST \/b\n[\s\S]*connection: close/i);
    expect(closedByServer).toBe(true);
    t.logs.length = 0;
  });
});
