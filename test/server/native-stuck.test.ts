// A worker thread stuck in C code (the native engine, an app blocked in select()): the
// timeout's asynchronous exception waits for a bytecode that never comes, and terminating
// the worker waits for a thread that never returns. After --timeout-grace and the stuck
// bound the thread leaves the pool, a replacement serves, the admin lists it as stuck;
// with --processes the process is replaced once it holds more than --max-stuck-threads.
// Real child servers: a stuck thread cannot be joined, so only a whole process ends it.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { engineTitle, nativeEngines } from './python-engines.ts';
import { startChild, waitFor, type StartedChild } from './support.ts';

const children: StartedChild['child'][] = [];
afterEach(() => { for (const child of children.splice(0)) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL'); });

async function start(args: string[], listening?: RegExp): Promise<StartedChild> {
  const started = await startChild(args, listening);
  children.push(started.child);
  return started;
}

interface Answer { token: string; pid: number }
const answer = async (url: string): Promise<Answer | false> => {
  const response = await fetch(url, { headers: { connection: 'close' } }).catch(() => undefined);
  return response?.status === 200 && (await response.json()) as Answer;
};

const STUCK_ARGS = ['--timeout', '1', '--timeout-grace', '1'];

for (const engine of nativeEngines()) {
  describe.skipIf(engine.skip !== undefined)(`a thread stuck in C code: ${engineTitle(engine)}`, () => {
    it('leaves the pool, a replacement serves, the admin lists it as stuck, and the process still stops', async () => {
      const { child, url, output } = await start(['/=test/fixtures/apps/blocks-in-c.py', '--workers', '1', ...STUCK_ARGS, ...engine.args]);
      const before = await waitFor(() => answer(url), 10_000, 'the first answer');
      expect((await fetch(`${url}/block`)).status).toBe(504);
      await waitFor(() => /a worker thread is stuck in C code and cannot be ended/.test(output()), 15_000, 'the stuck line');
      // The next requests are served by a new interpreter, in the same process.
      const after = await waitFor(() => answer(url), 15_000, 'an answer from the replacement');
      expect(after.token).not.toBe(before.token);
      expect(after.pid).toBe(before.pid);
      const stats = await (await fetch(`${url}/_interpool/api/stats`)).json() as { apps: { stuck: number; exits: { stuck: number }; interpreters: { state: string }[] }[] };
      const [app] = stats.apps;
      expect(app!.stuck).toBe(1);
      expect(app!.exits.stuck).toBe(1);
      expect(app!.interpreters.map((i) => i.state).sort()).toEqual(['idle', 'stuck']);
      // Blocked in C, the thread never ran the trace function meant to unwind it.
      expect(output()).not.toContain('made to unwind');
      // Node's exit would wait for the stuck thread forever: the server ends itself.
      const exited = new Promise<NodeJS.Signals | null>((resolve) => child.once('exit', (_code, signal) => resolve(signal)));
      child.kill('SIGTERM');
      expect(await exited).toBe('SIGKILL');
      expect(output()).toMatch(/1 worker threads are stuck in C code and cannot be joined: ending the process with SIGKILL/);
    }, 60_000);

    // Before: it counted as stuck, its thread spinning a CPU until the process ended.
    it.each(['/swallow', '/swallow-call'])('a request whose Python catches the timeout\'s exception and carries on (%s) is made to unwind at --timeout-grace: its worker ends, not stuck', async (path) => {
      const { url, output } = await start(['/=test/fixtures/apps/blocks-in-c.py', '--workers', '1', ...STUCK_ARGS, ...engine.args]);
      const before = await waitFor(() => answer(url), 10_000, 'the first answer');
      expect((await fetch(`${url}${path}`)).status).toBe(504);
      await waitFor(() => output().includes('it was made to unwind, and its worker ends'), 15_000, 'the unwind line');
      const stats = async () => ((await (await fetch(`${url}/_interpool/api/stats`)).json()) as { apps: { stuck: number; exits: { timeout: number; stuck: number } }[] }).apps[0]!;
      await waitFor(async () => (await stats()).exits.timeout === 1, 15_000, 'the worker\'s exit');
      const after = await waitFor(() => answer(url), 15_000, 'an answer from the replacement');
      expect(after.token).not.toBe(before.token);
      expect(await stats()).toMatchObject({ stuck: 0, exits: { timeout: 1, stuck: 0 } });
      expect(output()).not.toMatch(/stuck in C code/);
    }, 60_000);

    it('a stuck thread that returns from C after all exits, and is no longer counted', async () => {
      const fifo = join(mkdtempSync(join(tmpdir(), 'interpool-stuck-')), 'gate');
      execFileSync('mkfifo', [fifo]);
      const { url, output } = await start(['/=test/fixtures/apps/blocks-in-c.py', '--workers', '1', ...STUCK_ARGS, ...engine.args]);
      expect((await fetch(`${url}/fifo?${fifo}`)).status).toBe(504);
      await waitFor(() => /a worker thread is stuck in C code/.test(output()), 15_000, 'the stuck line');
      const stuck = async () => ((await (await fetch(`${url}/_interpool/api/stats`)).json()) as { apps: { stuck: number }[] }).apps[0]!.stuck;
      expect(await stuck()).toBe(1);
      // Open the gate: the app's open() returns, the thread gets back to Python (which
      // raises the pending timeout, closing its end: the write may then find no reader)
      // and to JS, where its termination ends it.
      try {
        writeFileSync(fifo, 'x');
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EPIPE') throw error;
      }
      await waitFor(() => output().includes('a stuck worker thread exited after all'), 15_000, 'the late exit');
      expect(await stuck()).toBe(0);
      // The replacement may still be booting (--timeout counts a queued request's wait
      // too, so a single request could get 504): wait for it to answer.
      await waitFor(() => answer(url), 15_000, 'an answer from the replacement');
    }, 60_000);

    it('a server stopped while a thread is blocked in C code (no --timeout) still stops', async () => {
      const { child, url, output } = await start(['/=test/fixtures/apps/blocks-in-c.py', '--workers', '1', '--timeout', '0', '--graceful-timeout', '1', ...engine.args]);
      void fetch(`${url}/block`).catch(() => undefined);
      await waitFor(async () => {
        const stats = await (await fetch(`${url}/_interpool/api/stats`)).json() as { apps: { interpreters: { state: string }[] }[] };
        return stats.apps[0]!.interpreters.some((i) => i.state === 'busy');
      }, 10_000, 'the blocking request to run');
      const exited = new Promise<NodeJS.Signals | null>((resolve) => child.once('exit', (_code, signal) => resolve(signal)));
      child.kill('SIGTERM');
      // Terminated at the graceful timeout, the thread never exits: it counts as stuck,
      // and the process ends itself instead of waiting for it forever.
      expect(await exited).toBe('SIGKILL');
      expect(output()).toMatch(/a worker thread is stuck in C code/);
    }, 60_000);

    it('with no --timeout, a reload takes effect while a thread is blocked in C, whose request waits on; a stop ends the process, reporting it stuck', async () => {
      // As under mod_wsgi with no request-timeout: nothing interrupts the request. A
      // reload does not wait for it; a stop waits --graceful-timeout, then ends the process.
      const { child, url, output } = await start(['/=test/fixtures/apps/blocks-in-c.py', '--workers', '1', '--timeout', '0', '--graceful-timeout', '1', ...engine.args]);
      const before = await waitFor(() => answer(url), 10_000, 'the first answer');
      let blocked: number | string | undefined;
      void fetch(`${url}/block`).then((response) => { blocked = response.status; }, () => { blocked = 'no response'; });
      await waitFor(async () => {
        const stats = await (await fetch(`${url}/_interpool/api/stats`)).json() as { apps: { interpreters: { state: string }[] }[] };
        return stats.apps[0]!.interpreters.some((i) => i.state === 'busy');
      }, 10_000, 'the blocking request to run');
      child.kill('SIGHUP');
      await waitFor(() => output().includes('reloaded: new interpreters serve'), 15_000, 'the reload to take effect');
      const after = await waitFor(() => answer(url), 10_000, 'an answer from the new generation');
      expect(after.token).not.toBe(before.token);
      expect(after.pid).toBe(before.pid);
      // The blocked request is still waiting: no timeout ended it, the reload did not.
      expect(blocked).toBeUndefined();
      // The admin still shows it: the old generation's interpreter, draining, its request in flight.
      const stats = await (await fetch(`${url}/_interpool/api/stats`)).json() as { apps: { inFlight: number; interpreters: { state: string; generation: number }[] }[] };
      expect(stats.apps[0]!.interpreters).toContainEqual(expect.objectContaining({ state: 'draining', generation: 1 }));
      expect(stats.apps[0]!.inFlight).toBeGreaterThanOrEqual(1);
      const exited = new Promise<NodeJS.Signals | null>((resolve) => child.once('exit', (_code, signal) => resolve(signal)));
      child.kill('SIGTERM');
      expect(await exited).toBe('SIGKILL');
      const lines = output().split('\n').filter((line) => line.startsWith('{')).map((line) => JSON.parse(line) as Record<string, unknown>);
      // The stuck interpreter is the old generation's, named in the log.
      expect(lines.find((line) => /a worker thread is stuck in C code/.test(String(line.msg)))).toMatchObject({ app: '/', generation: 1 });
      expect(output()).toMatch(/1 worker threads are stuck in C code and cannot be joined: ending the process with SIGKILL/);
      await waitFor(() => blocked !== undefined, 10_000, 'the blocked request to end with its process');
    }, 60_000);

    it('with --processes 2, a process holding more than --max-stuck-threads is replaced', async () => {
      const { url, output } = await start(
        ['/=test/fixtures/apps/blocks-in-c.py', '--workers', '1', '--processes', '2', '--max-stuck-threads', '0', ...STUCK_ARGS, ...engine.args],
        /listening on (http:\/\/[\d.]+:\d+) with 2 processes/,
      );
      const before = new Set<number>();
      await waitFor(async () => {
        const seen = await answer(url);
        if (seen) before.add(seen.pid);
        return before.size === 2;
      }, 20_000, 'answers from two processes');
      expect((await fetch(`${url}/block`, { headers: { connection: 'close' } })).status).toBe(504);
      const line = await waitFor(() => /replacing server process (\d+): 1 worker threads stuck in C code/.exec(output()), 20_000, 'the replacement');
      const replaced = Number(line![1]);
      expect(before.has(replaced)).toBe(true);
      await waitFor(() => output().includes('a replaced server process stopped'), 20_000, 'the replaced process to stop');
      const after = new Set<number>();
      await waitFor(async () => {
        const seen = await answer(url);
        if (seen) after.add(seen.pid);
        return after.size === 2;
      }, 20_000, 'answers from two live processes');
      expect(after.has(replaced)).toBe(false);
    }, 90_000);
  });
}
