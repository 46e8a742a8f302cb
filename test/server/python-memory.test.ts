// What an idle Python interpreter keeps in its worker thread once booted (issue 18):
// the boot's buffers given back and the young generation shrunk, in the worker that
// made the app's snapshot and in the one restored from it; and how far a load may grow
// its young generation.
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { holdResponse } from './gates.ts';
import { startTestServer, type TestServer } from './support.ts';

interface Heap { worker: string; youngGenerationLimitMb: number; oldGenerationLimitMb: number; heapTotal: number; external: number; arrayBuffers: number; wasm: number }

const MiB = 1024 * 1024;
let dir: string;
let t: TestServer;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'interpool-heap-'));
  copyFileSync('test/fixtures/apps/reports-heap.py', join(dir, 'reports-heap.py'));
  t = await startTestServer([`/=${join(dir, 'reports-heap.py')}`, '--workers', '2', '--min-workers', '2', '--cache-dir', '']);
}, 120_000);
afterAll(async () => {
  await t?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('an idle Python interpreter', () => {
  it('keeps neither the snapshot buffers of its boot nor the young generation the boot grew', async () => {
    // The first request holds its interpreter, so the second runs in the other one.
    const first = await holdResponse(t.url, 'release');
    const second = await holdResponse(t.url, 'release');
    writeFileSync(join(dir, 'release'), '');
    await Promise.all([first.rest, second.rest]);
    const heaps = [first.first, second.first] as unknown as Heap[];
    expect(heaps[0]!.worker).not.toBe(heaps[1]!.worker);
    for (const heap of heaps) {
      // Beyond its wasm memory, a worker holds a few MB of buffers (Pyodide's and Node's);
      // the snapshots it read or made (30 MB each) were still counted after a plain
      // collection. Its JavaScript heap is ~20 MB; the young generation the boot grew
      // (16 MB) stayed committed.
      expect((heap.external - heap.wasm) / MiB, 'external memory beyond the wasm heap, MiB').toBeLessThan(16);
      expect(heap.heapTotal / MiB, 'JavaScript heap, MiB').toBeLessThan(32);
    }
  });

  it('has a young generation bounded well below V8\'s default, which a load grew to 64-128 MB per interpreter', async () => {
    const heap = await (await fetch(t.url)).json() as Heap;
    expect(heap.youngGenerationLimitMb).toBeGreaterThan(0);
    expect(heap.youngGenerationLimitMb).toBeLessThanOrEqual(16);
  });

  it('has an old generation ceiling of 512 MB, so that V8 collects it before it doubles (its default, 2-4 GB, let it grow 4x between collections)', async () => {
    const heap = await (await fetch(t.url)).json() as Heap;
    expect(heap.oldGenerationLimitMb).toBe(512);
  });
});
