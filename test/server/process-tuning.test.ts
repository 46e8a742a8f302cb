// What `serve` sets for its process at the start (issue 18): glibc's allocator thresholds,
// by starting itself again in place (same pid), and Node's compile cache for every thread.
import { readdirSync, readFileSync } from 'node:fs';
import { once } from 'node:events';
import { describe, expect, it } from 'vitest';
import { ALLOCATOR_SETTINGS, planRestart, TUNED_MARKER, type TuningSources } from '../../server/process-tuning.ts';
import { engineTitle, nativeEngines } from './python-engines.ts';
import { startChild, waitFor, type StartedChild } from './support.ts';

const glibc = process.platform === 'linux' ? (process.report.getReport() as { header?: { glibcVersionRuntime?: string } }).header?.glibcVersionRuntime : undefined;
const MiB = 1024 * 1024;

function environOf(pid: number): Record<string, string> {
  return Object.fromEntries(readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').filter(Boolean).map((entry) => {
    const at = entry.indexOf('=');
    return [entry.slice(0, at), entry.slice(at + 1)];
  }));
}

function logLines(server: StartedChild): Record<string, unknown>[] {
  return server.output().split('\n').filter((line) => line.startsWith('{')).map((line) => JSON.parse(line) as Record<string, unknown>);
}

/** SIGTERM, once the server has said what it serves (its signal handlers are in place by then). */
async function stop(server: StartedChild): Promise<number | null> {
  await waitFor(() => server.output().includes('"msg":"serving ') || server.output().includes('with 2 processes'), 10_000, 'the server to say what it serves');
  const exited = once(server.child, 'exit');
  server.child.kill('SIGTERM');
  const [code] = (await exited) as [number | null];
  return code;
}

describe.runIf(glibc !== undefined)('glibc allocator settings', () => {
  it('serve starts itself again in place (the same pid) with the thresholds, says so, and still stops on SIGTERM', async () => {
    const server = await startChild(['apps/hello.ts', '--workers', '1']);
    try {
      const pid = server.child.pid!;
      const line = logLines(server).find((l) => String(l.msg).startsWith('glibc allocator'));
      expect(line).toMatchObject({ pid, setBy: 'interpool', allocator: ALLOCATOR_SETTINGS });
      const environ = environOf(pid);
      for (const [name, value] of Object.entries(ALLOCATOR_SETTINGS)) expect(environ[name]).toBe(value);
      expect(environ[TUNED_MARKER]).toBeDefined();
      expect(await (await fetch(server.url)).text()).toBe('Hello, World!\n');
    } finally {
      expect(await stop(server)).toBe(0);
    }
  });

  it('keeps a threshold the environment sets, and --allocator-tuning off sets none', async () => {
    const own = await startChild(['apps/hello.ts', '--workers', '1'], undefined, undefined, { MALLOC_MMAP_THRESHOLD_: '65536' });
    try {
      expect(environOf(own.child.pid!)).toMatchObject({ MALLOC_MMAP_THRESHOLD_: '65536', MALLOC_TRIM_THRESHOLD_: '131072' });
      expect(logLines(own).find((l) => String(l.msg).startsWith('glibc allocator'))?.allocator).toEqual({ MALLOC_MMAP_THRESHOLD_: '65536', MALLOC_TRIM_THRESHOLD_: '131072' });
    } finally {
      await stop(own);
    }
    const off = await startChild(['apps/hello.ts', '--workers', '1', '--allocator-tuning', 'off']);
    try {
      const environ = environOf(off.child.pid!);
      expect(environ.MALLOC_MMAP_THRESHOLD_).toBeUndefined();
      expect(environ[TUNED_MARKER]).toBeUndefined();
      expect(logLines(off).some((l) => String(l.msg).startsWith('glibc allocator'))).toBe(false);
    } finally {
      await stop(off);
    }
  });

  it('--processes: the primary is started again once, and its server processes inherit the settings', async () => {
    const server = await startChild(['apps/hello.ts', '--workers', '1', '--processes', '2'], /listening on (http:\/\/[\d.]+:\d+) with 2 processes/);
    try {
      const pid = server.child.pid!;
      const children = await waitFor(() => {
        const found = readdirSync('/proc').filter((entry) => /^\d+$/.test(entry)).filter((entry) => {
          try {
            return readFileSync(`/proc/${entry}/stat`, 'utf8').split(') ')[1]!.split(' ')[1] === String(pid);
          } catch {
            return false;
          }
        });
        return found.length === 2 && found;
      }, 10_000, 'two server processes');
      for (const child of children) expect(environOf(Number(child))).toMatchObject(ALLOCATOR_SETTINGS);
      expect(logLines(server).filter((l) => String(l.msg).startsWith('glibc allocator'))).toHaveLength(1);
    } finally {
      expect(await stop(server)).toBe(0);
    }
  });
});

describe('when serve starts itself again', () => {
  const linux: TuningSources = { argv: ['app.py'], env: {}, platform: 'linux', glibc: '2.36', canExecve: true };

  it('on Linux with glibc, once, adding only the variables not set', () => {
    expect(planRestart(linux)?.added).toEqual(ALLOCATOR_SETTINGS);
    expect(planRestart({ ...linux, env: { MALLOC_TRIM_THRESHOLD_: '1' } })?.added).toEqual({ MALLOC_MMAP_THRESHOLD_: '131072' });
    expect(planRestart({ ...linux, env: { ...ALLOCATOR_SETTINGS } })).toBeUndefined();
    expect(planRestart({ ...linux, env: { [TUNED_MARKER]: 'MALLOC_MMAP_THRESHOLD_' } })).toBeUndefined();
  });

  it('never elsewhere, when turned off, when GLIBC_TUNABLES tunes malloc, or for a bad command line', () => {
    expect(planRestart({ ...linux, glibc: undefined })).toBeUndefined();
    expect(planRestart({ ...linux, platform: 'darwin' })).toBeUndefined();
    expect(planRestart({ ...linux, canExecve: false })).toBeUndefined();
    expect(planRestart({ ...linux, argv: ['app.py', '--allocator-tuning', 'off'] })).toBeUndefined();
    expect(planRestart({ ...linux, env: { INTERPOOL_ALLOCATOR_TUNING: 'off' } })).toBeUndefined();
    expect(planRestart({ ...linux, argv: ['app.py', '--allocator-tuning', 'on'], env: { INTERPOOL_ALLOCATOR_TUNING: 'off' } })).toBeDefined();
    expect(planRestart({ ...linux, env: { GLIBC_TUNABLES: 'glibc.malloc.arena_max=2' } })).toBeUndefined();
    expect(planRestart({ ...linux, argv: ['app.py', '--no-such-option'] })).toBeUndefined();
    expect(planRestart({ ...linux, argv: ['--help'] })).toBeUndefined();
  });

  // Found by an outside test: with the fixed thresholds, `body += chunk` over a 5 MB
  // upload took 4.5 s on the native engine on every request, 0.08 s without them.
  for (const engine of nativeEngines()) {
    it.skipIf(engine.skip !== undefined)(`never for a server with an app on the ${engineTitle(engine)} engine, whose objects come from glibc's allocator`, () => {
      const cwd = process.cwd();
      expect(planRestart({ ...linux, cwd, argv: ['apps/hello.py', ...engine.args] })).toBeUndefined();
      expect(planRestart({ ...linux, cwd, argv: ['/=apps/hello.ts', '/py=apps/hello.py', ...engine.args] })).toBeUndefined();
      // The same apps on Pyodide, or JavaScript alone, are still tuned.
      expect(planRestart({ ...linux, cwd, argv: ['/=apps/hello.ts', '/py=apps/hello.py'] })?.added).toEqual(ALLOCATOR_SETTINGS);
      expect(planRestart({ ...linux, cwd, argv: ['apps/hello.ts', ...engine.args] })?.added).toEqual(ALLOCATOR_SETTINGS);
    });
  }
});

describe('Node compile cache', () => {
  it('a Python interpreter started by the CLI loads interpool from the compile cache, without the TypeScript stripper', async () => {
    const args = ['test/fixtures/apps/reports-heap.py', '--workers', '1'];
    // The first start fills the cache with whatever it did not hold yet; the second reads it.
    await stop(await startChild(args));
    const server = await startChild(args);
    try {
      const heap = await (await fetch(server.url)).json() as { external: number; wasm: number; compileCache: string | null };
      expect(heap.compileCache).toBeTruthy();
      // Node's type stripper is a WebAssembly module of its own (6.6 MB of it counted as
      // external, ~12 MiB resident), loaded by the first TypeScript file a thread strips:
      // 14.5 MiB beyond the interpreter's wasm heap without the cache, 7.9 with it.
      expect((heap.external - heap.wasm) / MiB).toBeLessThan(11);
    } finally {
      await stop(server);
    }
  });
});
