/**
 * wsgi.py's code for the native engine, compiled once and kept: for the process in the
 * addon (each worker thread's interpreter loads it from there), and between starts in
 * the cache directory (--cache-dir), so that only the first interpreter after the
 * adapter or the CPython changed compiles it. Compiling it was 13-17 ms, a third of the
 * first interpreter's start (docs/python.md, "How long an interpreter takes to start").
 *
 * Bytes, not a code object: a code object belongs to the interpreter that made it
 * (own-GIL interpreters share no object), its marshalled form to none. The key is what
 * the code depends on: the CPython's version (marshal's format and the bytecode change
 * with it), the adapter's path (its tracebacks name it) and its source. The file is a
 * kept file (runtime/kept-file.ts, as Pyodide's runtime snapshot is): one made for
 * another key, cut short or damaged is not used, and is written anew.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { keptFileBody, writeKeptFile } from '../kept-file.ts';

const MAGIC = 'interpool native adapter code 1';

export interface AdapterCode {
  /** The adapter's source, as compiled (read once, so that the key and the code agree). */
  source: Uint8Array;
  /** What the code depends on, hashed: the addon's shared-bytes key and the file's header. */
  key: string;
  /** The file in the cache directory, or undefined when nothing is kept on disk. */
  path?: string;
}

export function locateAdapterCode(adapterFile: string, cpythonVersion: string, cacheDir: string, source: Uint8Array = readFileSync(adapterFile)): AdapterCode {
  const key = `wsgi.py code ${createHash('sha256').update(JSON.stringify([cpythonVersion, adapterFile])).update(source).digest('hex').slice(0, 24)}`;
  const name = `native-adapter-cpython-${cpythonVersion.replace(/[^\w.-]/g, '_')}-${key.slice(-24)}.code`;
  return { source, key, ...(cacheDir !== '' ? { path: join(cacheDir, name) } : {}) };
}

/**
 * The code kept on disk, or undefined when there is none. Throws, saying why, when the
 * file is not one of ours, was made for another key, or is cut short or damaged.
 */
export function readAdapterCode(code: AdapterCode & { path: string }): Uint8Array | undefined {
  let file: Buffer;
  try {
    file = readFileSync(code.path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  return keptFileBody(file, code, MAGIC, 'an interpool adapter code file');
}

/** Keep the code on disk (kept-file.ts). */
export function writeAdapterCode(code: AdapterCode & { path: string }, bytes: Uint8Array): void {
  writeKeptFile(code, MAGIC, bytes);
}
