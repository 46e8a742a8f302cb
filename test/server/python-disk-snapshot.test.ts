// The runtime snapshot kept on disk between starts (--cache-dir): a server started again
// restores its first interpreter from it instead of loading Pyodide cold; a damaged or
// foreign file is ignored with one log line, and written anew.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort, waitFor } from './support.ts';

const cache = mkdtempSync(join(tmpdir(), 'interpool-cache-test-'));
afterAll(() => rmSync(cache, { recursive: true, force: true }));

interface LogLine { msg?: string; level?: number; stages?: { name: string }[] }

/**
 * Start a one-worker server on the cache (a process of its own: the runtime snapshot of a
 * process never outlives it), wait for its interpreter, stop it; its stage names and
 * warnings. (Not startChild: a cold Pyodide boot on a loaded machine outlasts its wait.)
 */
async function startOnce(): Promise<{ stages: string[]; warnings: string[] }> {
  const port = await freePort();
  const child = spawn(process.execPath, ['bin/interpool.js', 'serve', '/=apps/hello.py', '--workers', '1', '--cache-dir', cache, '--bind', `127.0.0.1:${port}`, '--log-level', 'info'], {
    cwd: process.cwd(),
    env: Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('INTERPOOL_'))),
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const log: LogLine[] = [];
  createInterface({ input: child.stdout! }).on('line', (line) => {
    try {
      log.push(JSON.parse(line) as LogLine);
    } catch {
      // not a log line
    }
  });
  try {
    const booted = await waitFor(() => log.find((line) => line.msg === 'interpreter booted') ?? (child.exitCode !== null ? Promise.reject(new Error('the server exited')) : undefined), 240_000, 'the interpreter to boot');
    await waitFor(() => log.some((line) => /^interpool listening/.test(line.msg ?? '')), 30_000, 'the server to listen');
    const response = await fetch(`http://127.0.0.1:${port}/`);
    expect(await response.text()).toBe('Hello, World!\n');
    const warnings = log.filter((line) => (line.level ?? 0) >= 40 && !/admin/.test(line.msg ?? '')).map((line) => line.msg ?? '');
    return { stages: booted.stages!.map((stage) => stage.name), warnings };
  } finally {
    child.kill('SIGTERM');
    if (child.exitCode === null) await once(child, 'exit');
  }
}

const snapshotFiles = () => readdirSync(cache).filter((name) => name.endsWith('.snap'));

describe('runtime snapshot on disk', () => {
  it('a server started again restores from it; a damaged one is ignored with one line and written anew', async () => {
    const first = await startOnce();
    expect(first.stages).toContain('load runtime');
    expect(first.stages).not.toContain('restore runtime from disk snapshot');
    expect(snapshotFiles()).toHaveLength(1);

    const again = await startOnce();
    expect(again.stages).toContain('restore runtime from disk snapshot');
    expect(again.stages).not.toContain('load runtime');
    expect(again.warnings).toEqual([]);

    const file = join(cache, snapshotFiles()[0]!);
    const damaged = readFileSync(file);
    damaged[damaged.length - 1000]! ^= 0xff;
    writeFileSync(file, damaged);
    const afterDamage = await startOnce();
    expect(afterDamage.stages).toContain('load runtime');
    expect(afterDamage.warnings).toEqual([expect.stringMatching(/^ignoring the runtime kept at .*\.snap, loading it cold: damaged \(checksum mismatch\)$/)]);

    // Written anew: the next start restores again.
    const healed = await startOnce();
    expect(healed.stages).toContain('restore runtime from disk snapshot');
  }, 300_000);

  it('a file of another build under this name is not used', async () => {
    if (snapshotFiles().length === 0) await startOnce();
    const file = join(cache, snapshotFiles()[0]!);
    const text = readFileSync(file);
    const headerEnd = text.indexOf(0x0a, text.indexOf(0x0a) + 1) + 1;
    const header = text.subarray(0, headerEnd).toString('latin1');
    // The same heap, its header naming another Pyodide (same length: the heap stays aligned).
    writeFileSync(file, Buffer.concat([Buffer.from(header.replace(/"key":"pyodide@[\d.]+/, (key) => key.replace(/\d(?=[^\d]*$)/, '9')), 'latin1'), text.subarray(headerEnd)]));
    const foreign = await startOnce();
    expect(foreign.stages).toContain('load runtime');
    expect(foreign.warnings).toEqual([expect.stringMatching(/^ignoring the runtime kept at .*: made for "pyodide@[\d.]+ \w+", not for/)]);
  }, 300_000);
});
