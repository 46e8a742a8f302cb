import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import { startChild, waitFor, type StartedChild } from './support.ts';

// A person at a terminal reads lines; a collector reading a pipe parses JSON. The server
// tells them apart by whether stdout is a terminal, so the terminal case runs the real
// CLI under util-linux's `script`, which gives it a pseudo-terminal.

const ANSI = /\x1b\[[0-9;]*m/g;
const children: ChildProcess[] = [];

// `script` runs the server in a session of its own on the pseudo-terminal, out of reach
// of a signal to script's process group: stop it as a person would, with Ctrl-C typed on
// that terminal (the server finishes and exits; script exits with it).
afterEach(async () => {
  await Promise.all(children.splice(0).map(async (child) => {
    if (child.exitCode !== null) return;
    const exited = once(child, 'exit');
    child.stdin!.write('\x03');
    await exited;
  }));
});

function startOnTerminal(extra: string[] = []): { child: ChildProcess; screen: () => string } {
  const command = [process.execPath, 'bin/interpool.js', 'serve', 'apps/hello.ts', '--workers', '1', '--bind', '127.0.0.1:0', ...extra].join(' ');
  const child = spawn('script', ['-qfec', command, '/dev/null'], {
    cwd: process.cwd(),
    env: Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('INTERPOOL_'))),
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  children.push(child);
  let screen = '';
  child.stdout!.on('data', (data: Buffer) => { screen += data.toString(); });
  return { child, screen: () => screen };
}

describe('log format', () => {
  it('on a terminal: coloured lines with time, level and message, an access line as "GET / 200"', async () => {
    const { screen } = startOnTerminal();
    const url = await waitFor(() => /listening on (http:\/\/[\d.]+:\d+)/.exec(screen().replace(ANSI, ''))?.[1], 20_000, 'the listening line');
    expect((await fetch(`${url}/?name=tty`)).status).toBe(200);
    const access = await waitFor(() => screen().replace(ANSI, '').split(/\r?\n/).find((line) => line.includes('GET / 200')), 10_000, 'the access line');

    expect(screen()).toMatch(ANSI); // colours
    expect(access).toMatch(/^\[\d\d:\d\d:\d\d\.\d{3}\] INFO: GET \/ 200 \d+ B [\d.]+ ms/);
    expect(access).not.toContain('?name=tty'); // the query string stays out of the log, as in JSON
    for (const line of screen().replace(ANSI, '').split(/\r?\n/).filter((l) => l.trim() !== '')) {
      expect(line.startsWith('{'), `a JSON line on the terminal: ${line}`).toBe(false);
    }
  });

  it('on a terminal with --log-format json: JSON lines still', async () => {
    const { screen } = startOnTerminal(['--log-format', 'json']);
    const listening = await waitFor(() => screen().split(/\r?\n/).find((line) => line.includes('listening on')), 20_000, 'the listening line');
    expect(JSON.parse(listening)).toMatchObject({ level: 30, msg: expect.stringMatching(/^interpool listening on http/) });
  });

  describe('through a pipe', () => {
    let server: StartedChild | undefined;
    afterEach(() => { server?.child.kill('SIGKILL'); server = undefined; });

    it('every line is JSON by default', async () => {
      server = await startChild(['apps/hello.ts', '--workers', '1']);
      expect((await fetch(`${server.url}/`)).status).toBe(200);
      const lines = await waitFor(() => {
        const all = server!.output().split('\n').filter((line) => line.trim() !== '');
        return all.some((line) => line.includes('"msg":"request"')) && all;
      }, 10_000, 'the access line');
      for (const line of lines) expect(() => JSON.parse(line) as unknown, line).not.toThrow();
    });

    it('--log-format pretty gives human lines without colour codes', async () => {
      server = await startChild(['apps/hello.ts', '--workers', '1', '--log-format', 'pretty']);
      expect((await fetch(`${server.url}/`)).status).toBe(200);
      const access = await waitFor(() => server!.output().split('\n').find((line) => line.includes('GET / 200')), 10_000, 'the access line');
      expect(access).toMatch(/^\[\d\d:\d\d:\d\d\.\d{3}\] INFO: GET \/ 200 /);
      expect(server.output()).not.toMatch(ANSI);
    });
  });
});
