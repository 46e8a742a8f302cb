/**
 * The zero-page-skipping copy a snapshot restore uses (runtime/interpreters/sparse-restore.ts):
 * the target ends up byte for byte as a plain set() leaves it, and a fresh WebAssembly
 * memory does not become resident for the source's zero pages.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { copySkippingZeroPages, readsMakePagesResident, withSparseCopies } from '../../runtime/interpreters/sparse-restore.ts';

const PAGE = 4096;
const MiB = 1 << 20;

/** A source of `pages` pages: one in four holds data, the others are zeros; `shift` misaligns it. */
function sparseSource(pages: number, shift = 0): Uint8Array {
  const bytes = new Uint8Array(pages * PAGE + shift).subarray(shift);
  for (let page = 0; page < pages; page += 4) {
    for (let i = 0; i < PAGE; i += 97) bytes[page * PAGE + i] = (page + i) % 251 + 1;
  }
  return bytes;
}

/**
 * `bytes` bytes of which one 4 MiB block in four holds data. Clustered, not one page in
 * four: where transparent huge pages are 'always' (/sys/kernel/mm/transparent_hugepage/enabled;
 * seen on a CI machine), touching one 4 KiB page of a fresh mapping makes its whole 2 MiB
 * huge page resident, so untouched zeros only stay out of memory 2 MiB at a time there.
 * Blocks of 4 MiB keep at least 3/4 of the memory untouched whatever the alignment.
 */
function clusteredSource(bytes: number): Uint8Array {
  const source = new Uint8Array(bytes);
  const block = 4 * MiB;
  for (let start = 0; start < bytes; start += 4 * block) {
    for (let i = start; i < start + block; i += 97) source[i] = (i % 251) + 1;
  }
  return source;
}

// (The project's TypeScript libraries do not declare WebAssembly.)
const WasmMemory = (globalThis as unknown as { WebAssembly: { Memory: new (size: { initial: number }) => { buffer: ArrayBuffer } } }).WebAssembly.Memory;

function residentKiB(): number {
  return Number(/VmRSS:\s+(\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))![1]);
}

describe('copySkippingZeroPages', () => {
  it('leaves the target exactly as set() does: zero pages over data are still written, offsets and unaligned sources too', () => {
    for (const [offset, shift] of [[0, 0], [100, 0], [PAGE * 3 + 5, 3], [7, 1]] as const) {
      const source = sparseSource(40, shift);
      // A target with data where the source has zeros: those pages must be overwritten.
      const expected = new Int8Array(source.length + offset + PAGE * 2).fill(9);
      const actual = new Int8Array(expected.length).fill(9);
      for (let i = PAGE * 8; i < PAGE * 12; i++) { expected[i] = 0; actual[i] = 0; }
      expected.set(source, offset);
      copySkippingZeroPages(actual, source, offset);
      expect(Buffer.from(actual.buffer).equals(Buffer.from(expected.buffer))).toBe(true);
    }
  });

  it('throws as set() does when the source does not fit', () => {
    const target = new Int8Array(PAGE);
    expect(() => copySkippingZeroPages(target, new Uint8Array(PAGE * 2), 0)).toThrow(RangeError);
  });

  it('within withSparseCopies, Int8Array.set into a fresh WebAssembly memory leaves its zero pages untouched (and set is itself again after); where reads make pages resident, set is left alone', async () => {
    const original = Int8Array.prototype.set;
    if (readsMakePagesResident()) {
      // This kernel gives a read of untouched memory a page of its own (no shared zero
      // page): checking for zeros would itself fill the memory, so nothing is patched.
      let during: unknown;
      await withSparseCopies(async () => { during = Int8Array.prototype.set; });
      expect(during).toBe(original);
      return;
    }
    const source = clusteredSource(64 * MiB);
    const plain = new Int8Array(new WasmMemory({ initial: 64 * 16 }).buffer);
    const sparse = new Int8Array(new WasmMemory({ initial: 64 * 16 }).buffer);
    let before = residentKiB();
    plain.set(source);
    const plainGrowth = residentKiB() - before;
    before = residentKiB();
    await withSparseCopies(async () => { sparse.set(source); });
    const sparseGrowth = residentKiB() - before;
    expect(Buffer.from(sparse.buffer).equals(Buffer.from(plain.buffer))).toBe(true);
    // A quarter of the memory holds data (at most 24 MiB resident with 2 MiB huge pages
    // straddling each block's ends): the plain copy makes all 64 MiB resident.
    expect(plainGrowth).toBeGreaterThan(56 * 1024);
    expect(sparseGrowth).toBeLessThan(32 * 1024);
    expect(Int8Array.prototype.set).toBe(original);
  });
});
