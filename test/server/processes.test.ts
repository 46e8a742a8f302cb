/**
 * What a whole `interpool serve` process does with signals, files and sibling
 * processes: SIGHUP reloads without downtime, --reload follows file changes, and
 * --processes runs several server processes that replace each other when one dies.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { get as httpGet } from 'node:http';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { startChild, waitFor, type StartedChild } from './support.ts';

const children: ChildProcess[] = [];
afterEach(() => { for (const child of children.splice(0)) if (child.exitCode === null) child.kill('SIGKILL'); });

/** Start a child server that afterEach will not leave running. */
async function startTracked(args: string[], listening?: RegExp): Promise<StartedChild> {
  const started = await startChild(args, listening);
  children.push(started.child);
  return started;
}

/** An app file in a temp directory that answers with its VERSION constant. */
function versionedApp(version: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'interpool-reload-'));
  const file = join(dir, 'versioned.mjs');
  writeVersion(file, version);
  return file;
}

function writeVersion(file: string, version: string): void {
  writeFileSync(file, `export function application(environ, startResponse) {
  startResponse('200 OK', [['Content-Type', 'text/plain']]);
  return ['${version}'];
}
`);
}

const text = async (url: string) => (await fetch(url)).text();

/** GET on a fresh connection each time, so that the cluster can hand it to any process. */
function freshGet(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    httpGet(url, { agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => { body += chunk; });
      res.on('end', () => resolve({ status: res.statusCode!, body }));
    }).on('error', reject);
  });
}

describe('SIGHUP', () => {
  it('reloads every app from the current files, without a failed request', async () => {
    const file = versionedApp('v1');
    const { child, url } = await startTracked([`/=${file}`, '--workers', '2']);
    expect(await text(url)).toBe('v1');
    let stop = false;
    const statuses: number[] = [];
    const load = Promise.all(Array.from({ length: 4 }, async () => {
      while (!stop) statuses.push((await fetch(url)).status);
    }));
    writeVersion(file, 'v2');
    child.kill('SIGHUP');
    await waitFor(async () => (await text(url)) === 'v2', 15_000, 'the reloaded app');
    stop = true;
    await load;
    expect(statuses.length).toBeGreaterThan(10);
    expect(statuses.every((status) => status === 200)).toBe(true);
  });
});

describe('--reload', () => {
  it('reloads an app when its file changes', async () => {
    const file = versionedApp('before');
    const { url, output } = await startTracked([`/=${file}`, '--workers', '1', '--reload']);
    expect(await text(url)).toBe('before');
    writeVersion(file, 'after');
    await waitFor(async () => (await text(url)) === 'after', 15_000, 'the changed file to be served');
    expect(output()).toContain('file changed: reloading');
  });

  it('keeps serving the old code when the changed file does not boot', async () => {
    const file = versionedApp('good');
    const { url, output } = await startTracked([`/=${file}`, '--workers', '1', '--reload']);
    expect(await text(url)).toBe('good');
    writeFileSync(file, 'export function application( {\n');
    await waitFor(() => output().includes('reload failed'), 15_000, 'the failed reload to be reported');
    expect(await text(url)).toBe('good');
  });
});

describe('--processes', () => {
  it('serves from P processes, and replaces one that dies', async () => {
    const { url, output } = await startTracked(['/=apps/counter.ts', '--workers', '1', '--processes', '2'], /listening on (http:\/\/[\d.]+:\d+) with 2 processes/);
    const pids = new Set<number>();
    await waitFor(async () => {
      pids.add((JSON.parse((await freshGet(url)).body) as { process: number }).process);
      return pids.size === 2;
    }, 10_000, 'answers from two processes');
    const [victim] = [...pids];
    process.kill(victim!, 'SIGKILL');
    await waitFor(() => output().includes('a server process died; starting a replacement'), 10_000, 'the replacement');
    const after = new Set<number>();
    await waitFor(async () => {
      const response = await freshGet(url).catch(() => undefined);
      if (response?.status === 200) after.add((JSON.parse(response.body) as { process: number }).process);
      return after.size === 2;
    }, 15_000, 'two live processes again');
    expect(after.has(victim!)).toBe(false);
  });

  it('wsgi.multiprocess is true with 2 processes of 1 interpreter each', async () => {
    const { url } = await startTracked(['/=test/fixtures/apps/reports-start-response-errors.ts', '--workers', '1', '--processes', '2'], /listening on (http:\/\/[\d.]+:\d+) with 2 processes/);
    expect(JSON.parse((await freshGet(`${url}/environ`)).body)).toMatchObject({ 'wsgi.multithread': false, 'wsgi.multiprocess': true });
  });

  it('SIGTERM stops every process and the primary exits 0', async () => {
    const { child } = await startTracked(['/=apps/hello.ts', '--workers', '1', '--processes', '2'], /listening on (http:\/\/[\d.]+:\d+) with 2 processes/);
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
  });
});
