// wsgi.py's code kept between starts for the native engine (--cache-dir;
// runtime/interpreters/native-adapter-code.ts): used when it was made from the adapter
// as it is, by this CPython; compiled anew, and kept again, when the adapter changed or
// the file is damaged. Each boot is a child process (test/fixtures/native/
// kept-adapter-code.ts): one process embeds one CPython, and a fresh one has no copy in memory.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { listNativeBuilds } from '../../native/builds.ts';
import { ADAPTER_FILE } from '../../runtime/interpreters/native.ts';
import { locateAdapterCode, readAdapterCode, writeAdapterCode } from '../../runtime/interpreters/native-adapter-code.ts';
import { engineTitle, nativeEngines } from '../server/python-engines.ts';

const SCRIPT = 'test/fixtures/native/kept-adapter-code.ts';

let cacheDir = '';
beforeEach(() => {
  cacheDir = mkdtempSync(join(tmpdir(), 'interpool-adapter-code-'));
});
afterEach(() => {
  rmSync(cacheDir, { recursive: true, force: true });
});

describe('the kept file', () => {
  const source = new TextEncoder().encode('x = 1\n');
  const located = () => locateAdapterCode('/srv/wsgi.py', '3.13.5', cacheDir, source) as ReturnType<typeof locateAdapterCode> & { path: string };

  it('has a key of the CPython, the path and the source: another of any of them is another file', () => {
    const base = located();
    expect(locateAdapterCode('/srv/wsgi.py', '3.13.5', cacheDir, source)).toEqual(base);
    for (const other of [
      locateAdapterCode('/srv/wsgi.py', '3.13.5', cacheDir, new TextEncoder().encode('x = 2\n')),
      locateAdapterCode('/srv/wsgi.py', '3.11.2', cacheDir, source),
      locateAdapterCode('/opt/wsgi.py', '3.13.5', cacheDir, source),
    ]) {
      expect(other.key).not.toBe(base.key);
      expect(other.path).not.toBe(base.path);
    }
    expect(locateAdapterCode('/srv/wsgi.py', '3.13.5', '', source).path).toBeUndefined();
  });

  it('gives back what was kept; nothing when there is none; refuses one cut short, damaged or made for another key', () => {
    const code = located();
    expect(readAdapterCode(code)).toBeUndefined();
    const bytes = new Uint8Array(1000).map((_, index) => index % 251);
    writeAdapterCode(code, bytes);
    expect(Buffer.from(readAdapterCode(code)!)).toEqual(Buffer.from(bytes));
    const file = readFileSync(code.path);
    writeFileSync(code.path, file.subarray(0, file.byteLength - 1));
    expect(() => readAdapterCode(code)).toThrow(/cut short/);
    const damaged = Buffer.from(file);
    damaged[damaged.byteLength - 10]! ^= 1;
    writeFileSync(code.path, damaged);
    expect(() => readAdapterCode(code)).toThrow(/damaged/);
    writeAdapterCode({ ...code, key: 'another' }, bytes);
    expect(() => readAdapterCode(code)).toThrow(/made for "another"/);
    writeFileSync(code.path, 'something else\n');
    expect(() => readAdapterCode(code)).toThrow(/not an interpool adapter code file/);
  });
});

interface Booted { planted: boolean; notes: string[]; version: string }

for (const engine of nativeEngines()) {
  const version = engine.name.split(' ').at(-1)!;
  describe.skipIf(engine.skip !== undefined)(`wsgi.py's code kept for ${engineTitle(engine)}`, () => {
    function boot(plant: 'none' | 'marked' | 'marked-for-old-source' | 'damaged'): Booted {
      const build = listNativeBuilds().find((candidate) => candidate.version === version)!;
      const run = spawnSync(process.execPath, [SCRIPT, build.addon, build.executable, cacheDir, plant], { encoding: 'utf8', timeout: 60_000 });
      if (run.status !== 0) throw new Error(`status ${run.status}, signal ${run.signal}: ${run.stderr}`);
      return JSON.parse(run.stdout) as Booted;
    }
    const kept = (booted: Booted) => {
      const code = locateAdapterCode(ADAPTER_FILE, booted.version, cacheDir);
      return readAdapterCode({ ...code, path: code.path! });
    };

    it('is kept by the first start and loaded by the next one instead of compiling wsgi.py', () => {
      const first = boot('none');
      expect(first.notes).toEqual([]);
      expect(kept(first)).toBeDefined();
      // Code planted under the key of wsgi.py as it is, with a mark: the next start runs it.
      expect(boot('marked')).toMatchObject({ planted: true, notes: [] });
    });

    it('is not used once wsgi.py changed: the adapter as it is now is compiled and kept', () => {
      const booted = boot('marked-for-old-source');
      expect(booted).toMatchObject({ planted: false, notes: [] });
      expect(kept(booted)).toBeDefined();
    });

    it('is not used when damaged: a note says so, and it is written anew', () => {
      const booted = boot('damaged');
      expect(booted.planted).toBe(false);
      expect(booted.notes).toEqual([expect.stringMatching(/^ignoring the adapter's code kept at .*, compiling it: damaged \(checksum mismatch\)$/)]);
      expect(kept(booted)).toBeDefined();
    });
  });
}
