// SIGTERM/SIGINT with a request in flight: the server stops accepting, lets the request
// finish, closes its pools and exits 0. A real `interpool serve` child process.
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { Agent, request as httpRequest, type RequestOptions } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ask, fileGate, GATED_APP, holdResponse, openGates } from './gates.ts';
import { getRequest, rawRequest, startChild, waitFor } from './support.ts';

let dir: string;
beforeEach(() => { dir = mkdtempSync(join(tmpdir(), 'interpool-signals-')); });
afterEach(() => rmSync(dir, { recursive: true, force: true }));

/**
 * Resolves with the exit code, or 'still running' if the child has not exited within `ms`.
 * On 'close', not 'exit': 'exit' can come before the last of the child's output has been
 * read, and the tests then look for its last log line.
 */
function exitWithin(child: ChildProcess, ms: number): Promise<number | null | 'still running'> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve('still running'), ms);
    child.once('close', (code: number | null) => { clearTimeout(timer); resolve(code); });
  });
}

function stop(child: ChildProcess): void {
  if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
}

const APP = ['/=test/fixtures/apps/streams-slowly.ts', '--workers', '1'];

/**
 * GET `url` from streams-slowly.ts held at a gate after its first chunk; once that chunk
 * is here (the request is in flight), send `signal`, wait until the server says it is
 * shutting down, then open the gate. Resolves with the whole body.
 */
function signalMidResponse(child: ChildProcess, output: () => string, url: string, signal: NodeJS.Signals, options: RequestOptions): Promise<string> {
  const gate = fileGate(dir, 'rest');
  return new Promise<string>((resolve, reject) => {
    httpRequest(`${url}/?chunks=3&${gate.query}`, options, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        if (text === '') {
          child.kill(signal);
          waitFor(() => /shutting down/.test(output()), 10_000, 'the server to start shutting down').then(() => gate.open(), reject);
        }
        text += chunk;
      });
      res.on('end', () => resolve(text));
      res.on('error', reject);
    }).on('error', reject).end();
  });
}

describe.each(['SIGTERM', 'SIGINT'] as const)('%s while a request is in flight', (signal) => {
  it('lets the request finish, then exits 0', async () => {
    const { child, url, output } = await startChild(APP);
    try {
      const exited = exitWithin(child, 20_000);
      // agent: false and Connection: close: the client holds no idle keep-alive socket
      // (see the case below for one that does).
      const body = await signalMidResponse(child, output, url, signal, { agent: false, headers: { connection: 'close' } });
      expect(body.match(/chunk \d produced/g)).toEqual(['chunk 1 produced', 'chunk 2 produced', 'chunk 3 produced']);
      expect(await exited).toBe(0);
      expect(output()).toMatch(/shutting down/);
      expect(output()).toMatch(/"msg":"stopped"/);
    } finally {
      stop(child);
    }
  });
});

it('after SIGTERM, new connections are refused while the in-flight request finishes', async () => {
  const gates = openGates({ version: 'v1' });
  const { child, url, output } = await startChild([`/=${GATED_APP}`, '--workers', '1']);
  try {
    const exited = exitWithin(child, 20_000);
    const port = Number(new URL(url).port);
    const held = await holdResponse(`${url}/`, 'released');
    child.kill('SIGTERM');
    await waitFor(() => /shutting down/.test(output()), 10_000, 'the server to start shutting down');
    const late = await rawRequest(port, getRequest('/')).then((r) => r.status, (error: NodeJS.ErrnoException) => error.code);
    expect([503, 'ECONNREFUSED']).toContain(late);
    gates.set('released');
    expect(await held.rest).toBe('end\n');
    expect(await exited).toBe(0);
  } finally {
    stop(child);
  }
});

// fastify.close() closes only the keep-alive connections that are idle when it starts;
// one whose response ends during the drain must not hold the process until the client
// drops it or --graceful-timeout runs out.
it('exits once its last request finished, though the client keeps the connection alive', async () => {
  const { child, url, output } = await startChild([...APP, '--graceful-timeout', '20']);
  try {
    const keepAlive = new Agent({ keepAlive: true, keepAliveMsecs: 60_000 });
    const body = await signalMidResponse(child, output, url, 'SIGTERM', { agent: keepAlive });
    expect(body.match(/chunk \d produced/g)).toHaveLength(3);
    // The client still holds the connection: a server waiting on it would exit only at
    // --graceful-timeout, saying so.
    const code = await exitWithin(child, 40_000);
    keepAlive.destroy();
    expect(code).toBe(0);
    expect(output()).not.toMatch(/did not finish within --graceful-timeout/);
  } finally {
    stop(child);
  }
}, 60_000);

// A reload takes effect once its new generation serves; the old one drains on its own.
// So a second SIGHUP while a long response still holds the first reload's old
// generation is not lost: it loads the newer code at once.
it('a second SIGHUP while an old generation still streams loads the newer code', async () => {
  const gates = openGates({ version: 'v1' });
  const { child, url } = await startChild([`/=${GATED_APP}`, '--workers', '1']);
  try {
    const held = await holdResponse(`${url}/`, 'released');
    expect(held.first.version).toBe('v1');
    gates.set('version', 'v2');
    child.kill('SIGHUP');
    await waitFor(async () => (await ask(`${url}/`)).version === 'v2', 15_000, 'the first reload');
    gates.set('version', 'v3');
    child.kill('SIGHUP');
    await waitFor(async () => (await ask(`${url}/`)).version === 'v3', 15_000, 'the second reload, with the v1 response still open');
    gates.set('released');
    expect(await held.rest).toBe('end\n');
    expect((await ask(`${url}/`)).version).toBe('v3');
  } finally {
    stop(child);
  }
});

// Left to Node, SIGUSR1 opened its inspector on 127.0.0.1:9229 (code execution for any
// local user), SIGUSR2 ended the server, SIGTTIN and SIGTTOU stopped it, and SIGALRM
// or SIGVTALRM (a timer an app's C code armed) ended it.
it('SIGUSR1, SIGUSR2, SIGTTIN, SIGTTOU, SIGALRM and SIGVTALRM are ignored with a line each; no debugger opens, the server serves on', async () => {
  const { child, url, output } = await startChild(['/=apps/hello.ts', '--workers', '1']);
  try {
    for (const signal of ['SIGUSR1', 'SIGUSR2', 'SIGTTIN', 'SIGTTOU', 'SIGALRM', 'SIGVTALRM'] as const) {
      child.kill(signal);
      await waitFor(() => output().includes(`${signal} ignored: `), 10_000, `the ${signal} line`);
    }
    const response = await fetch(`${url}/`);
    expect(await response.text()).toBe('Hello, World!\n');
    expect(output()).not.toMatch(/Debugger listening/);
    expect(child.exitCode).toBeNull();
    expect(child.signalCode).toBeNull();
  } finally {
    stop(child);
  }
});
