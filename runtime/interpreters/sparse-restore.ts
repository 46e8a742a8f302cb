/**
 * Restoring a Pyodide snapshot without making its zero pages resident.
 *
 * Pyodide restores a memory snapshot with one `HEAP8.set(snapshot)` into a fresh
 * WebAssembly memory. About half of a runtime snapshot's pages are zeros (15.6 of 30 MiB
 * for Python 3.14's), and writing a page of zeros over a fresh, never-touched page makes
 * the kernel give it a page of its own all the same: every restored interpreter kept
 * ~15 MiB of resident zeros. While a snapshot is restored, Int8Array's `set` skips each
 * 4 KiB page that is zero in the source and already zero in the destination (writing
 * zeros over zeros changes nothing, so every call keeps its meaning) and copies the rest
 * as before. Reading a never-touched page does not make it resident.
 *
 * That last holds where the kernel maps its shared zero page for a read of untouched
 * anonymous memory, as Linux does by default. Some kernels give such a read a page of
 * its own (seen on this workplace's machines with kernel 6.18: reading one byte of each
 * page of a fresh 1 GiB ArrayBuffer made 1 GiB resident). There the check itself would
 * make every page resident and save nothing, so a one-off probe (readsMakePagesResident)
 * turns the skipping off and the restore is the plain copy.
 */
import { readFileSync } from 'node:fs';

const PAGE = 4096;
/** Smaller copies are left to the original set: the check would cost more than it saves. */
const SPARSE_FROM_BYTES = 1 << 20;

type TypedSet = (this: Int8Array, source: ArrayLike<number>, offset?: number) => void;

/** Run `restore` (a Pyodide load with `_loadSnapshot`) with zero-page-skipping copies into Int8Arrays. */
export async function withSparseCopies<T>(restore: () => Promise<T>): Promise<T> {
  if (readsMakePagesResident()) return restore();
  const prototype = Int8Array.prototype as unknown as { set: TypedSet };
  const original = prototype.set;
  prototype.set = function sparseSet(this: Int8Array, source: ArrayLike<number>, offset = 0): void {
    if (!ArrayBuffer.isView(source) || source.byteLength < SPARSE_FROM_BYTES || (source as Uint8Array).BYTES_PER_ELEMENT !== 1) {
      original.call(this, source, offset);
      return;
    }
    copySkippingZeroPages(this, source as Uint8Array | Int8Array, offset, original);
  };
  try {
    return await restore();
  } finally {
    prototype.set = original;
  }
}

/**
 * `target.set(source, offset)`, except for whole pages (of the target's buffer) that are
 * zero on both sides. Throws what set throws for a source that does not fit.
 */
export function copySkippingZeroPages(target: Int8Array, source: Uint8Array | Int8Array, offset: number, set: TypedSet = Int8Array.prototype.set as unknown as TypedSet): void {
  const length = source.byteLength;
  if (!Number.isInteger(offset) || offset < 0 || offset + length > target.length) {
    set.call(target, source, offset);
    return;
  }
  const start = target.byteOffset + offset;
  const into = new Uint8Array(target.buffer, start, length);
  const from = new Uint8Array(source.buffer, source.byteOffset, length);
  // Pages are counted in the target buffer: the first and last may be partial.
  let copyFrom = 0;
  let position = Math.min(length, PAGE - (start % PAGE));
  let pageStart = 0;
  while (pageStart < length) {
    const pageEnd = position;
    if (pageEnd - pageStart === PAGE && allZero(from, pageStart, pageEnd) && allZero(into, pageStart, pageEnd)) {
      if (copyFrom < pageStart) set.call(target, from.subarray(copyFrom, pageStart), offset + copyFrom);
      copyFrom = pageEnd;
    }
    pageStart = pageEnd;
    position = Math.min(length, pageEnd + PAGE);
  }
  if (copyFrom < length) set.call(target, from.subarray(copyFrom, length), offset + copyFrom);
}

function allZero(bytes: Uint8Array, from: number, to: number): boolean {
  // Word by word where the bytes allow it (the common case: both buffers 4-byte aligned).
  if ((bytes.byteOffset + from) % 4 === 0 && (to - from) % 4 === 0) {
    const words = new Uint32Array(bytes.buffer, bytes.byteOffset + from, (to - from) / 4);
    for (let i = 0; i < words.length; i++) if (words[i] !== 0) return false;
    return true;
  }
  for (let i = from; i < to; i++) if (bytes[i] !== 0) return false;
  return true;
}

const PROBE_BYTES = 4 << 20;
let probed: boolean | undefined;

/**
 * Whether reading never-touched memory makes it resident here: read one byte of each page
 * of a fresh 4 MiB buffer and see whether the process grew by half of it or more (other
 * threads' allocations in between can only make it look so, and then the restore is the
 * plain copy it was anyway). Probed once per thread.
 */
export function readsMakePagesResident(): boolean {
  if (probed !== undefined) return probed;
  const bytes = new Uint8Array(PROBE_BYTES);
  const before = residentKiB();
  let sum = 0;
  for (let i = 0; i < bytes.length; i += PAGE) sum += bytes[i]!;
  const grown = residentKiB() - before;
  // (sum is read so that the loop is not optimised away.)
  probed = sum !== 0 || grown * 1024 >= PROBE_BYTES / 2;
  return probed;
}

function residentKiB(): number {
  const match = /VmRSS:\s+(\d+)/.exec(readFileSync('/proc/self/status', 'utf8'));
  return match ? Number(match[1]) : 0;
}
