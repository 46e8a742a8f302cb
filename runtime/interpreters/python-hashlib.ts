/**
 * hashlib.pbkdf2_hmac and hashlib.scrypt for Pyodide, computed by Node's crypto.
 *
 * CPython takes both from its OpenSSL module (_hashlib), which Pyodide does not build, so
 * they did not exist and password hashing failed (Django's make_password, Werkzeug's
 * generate_password_hash). Node's crypto is the same OpenSSL: the Python side
 * (runtime/hashlib_kdf.py) checks the arguments as CPython does and raises its
 * exceptions, then calls the global function KDF_ENTRY defined here for the bytes.
 *
 * The Python side looks the function up on globalThis at each call and keeps no
 * JavaScript reference, so the functions it installs in hashlib survive a memory
 * snapshot; this module defines the global again in every worker.
 */
import { readFileSync } from 'node:fs';
import { createHash, pbkdf2Sync, scryptSync } from 'node:crypto';

/** The global the Python side calls (runtime/hashlib_kdf.py `_ENTRY`). */
const KDF_ENTRY = 'interpoolKdf';
const KDF_SOURCE = readFileSync(new URL('../hashlib_kdf.py', import.meta.url), 'utf8');
const MODULE_DIR = '/interpool';

interface KdfRuntime {
  FS: { mkdirTree(path: string): void; writeFile(path: string, data: string): void };
  runPython(code: string): unknown;
}

/** What Python calls; every argument is already checked there. */
const kdf = {
  /** The size of an OpenSSL digest (PBKDF2's default key length), -1 when OpenSSL does not know the name. */
  digestSize(name: string): number {
    try {
      return createHash(name).digest().length;
    } catch {
      return -1;
    }
  },
  /** Whether a digest is extendable-output (SHAKE): OpenSSL's PBKDF2 refuses those. */
  extendable(name: string): boolean {
    try {
      createHash(name, { outputLength: createHash(name).digest().length + 1 });
      return true;
    } catch {
      return false;
    }
  },
  pbkdf2(name: string, password: Uint8Array, salt: Uint8Array, iterations: number, length: number): Uint8Array {
    return new Uint8Array(pbkdf2Sync(password, salt, iterations, length, name));
  },
  /**
   * `maxmem` is the memory the parameters need, already checked against CPython's limit
   * (its own default is OpenSSL's 32 MiB; Node's default is also 32 MiB but counted
   * differently, so the exact need is passed and the limit is Python's alone).
   */
  scrypt(password: Uint8Array, salt: Uint8Array, n: number, r: number, p: number, maxmem: number, length: number): Uint8Array {
    return new Uint8Array(scryptSync(password, salt, length, { N: n, r, p, maxmem }));
  },
};

/**
 * Give this interpreter hashlib.pbkdf2_hmac and hashlib.scrypt when it lacks them. Call
 * after every load, before the app's import (an app may import them by name).
 */
export function enableKeyDerivation(pyodide: KdfRuntime): void {
  if (!(KDF_ENTRY in globalThis)) Object.defineProperty(globalThis, KDF_ENTRY, { value: kdf });
  // The source in the file system for tracebacks (the file system is not in a snapshot).
  pyodide.FS.mkdirTree(MODULE_DIR);
  pyodide.FS.writeFile(`${MODULE_DIR}/interpool_hashlib_kdf.py`, KDF_SOURCE);
  pyodide.runPython(`import sys; sys.path.count(${JSON.stringify(MODULE_DIR)}) or sys.path.insert(0, ${JSON.stringify(MODULE_DIR)})
import interpool_hashlib_kdf; interpool_hashlib_kdf.install()`);
}
