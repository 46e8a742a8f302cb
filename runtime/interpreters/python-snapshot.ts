/**
 * One memory snapshot per app, shared by the worker threads of this server process.
 *
 * The first worker of an app to claim the snapshot's lock loads the runtime, imports
 * the app, and writes the snapshot (the whole wasm heap, 20-40 MB) to a file; every
 * other worker of that app — workers 2..N and every later replacement — waits for the
 * file and restores from it instead of booting cold. The runtime itself is snapshotted
 * the same way, once per Python per server, for the first worker of every other app.
 *
 * Files live in `<tmpdir>/interpool-snapshots/<pid>/`: a snapshot never outlives the
 * server process that made it, so a restarted server always imports the current code.
 * The name is a hash of what the heap depends on: the Pyodide build, the app file (path,
 * size, mtime), its callable, its Python path, the pool's generation (reloads) and the
 * environment the interpreter was given (os.environ is part of the heap). Directories
 * of dead processes are removed by the next server that makes a snapshot.
 *
 * The runtime snapshot alone is also kept on disk between starts (`--cache-dir`): the
 * first worker of a server started again restores it instead of loading Pyodide cold.
 * Its name and header carry the same key (the Pyodide build, the adapter's source, the
 * environment), so a new build or adapter never restores an old heap; a checksum catches
 * a file cut short or damaged, which is then ignored and written anew.
 */
import { createHash } from 'node:crypto';
import { closeSync, fstatSync, mkdirSync, openSync, readFileSync, readSync, readdirSync, renameSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { threadId } from 'node:worker_threads';
import { SCRATCH_DIR_NAME, type WorkerSpec } from '../protocol.ts';
import { keptFileBody, writeKeptFile, type KeptFile } from '../kept-file.ts';

/**
 * The lock holder touches its lock every HEARTBEAT_MS while it boots; a lock untouched
 * for LOCK_STALE_MS belongs to a worker that died (terminated mid-boot), and the waiters
 * stop waiting for it.
 */
const HEARTBEAT_MS = 1000;
const LOCK_STALE_MS = 20_000;
const POLL_MS = 25;

export interface SnapshotFiles {
  snapshot: string;
  lock: string;
  /** Written instead of the snapshot when the app cannot be snapshotted: the reason. */
  refused: string;
}

/** What this worker should do, decided once at boot. */
export type SnapshotPlan =
  | { action: 'restore'; bytes: Uint8Array }
  | { action: 'make' }
  | { action: 'cold'; reason: string };

export interface PlanOptions {
  /** Milliseconds after which an untouched lock is considered abandoned. */
  staleMs?: number;
}

/**
 * The snapshot of one app: the runtime with the app imported. `settings.generation`,
 * when the main thread passes one, changes with every reload, so that a reload imports
 * the app's modules afresh even when only a module beside the app file changed.
 */
export function locateSnapshot(
  spec: WorkerSpec, runtime: string, pythonPath: readonly string[], environment: Readonly<Record<string, string>> = {},
): SnapshotFiles {
  const { size, mtimeMs } = statSync(spec.file);
  return filesFor('app', [runtime, spec.file, size, mtimeMs, spec.callable, pythonPath, spec.settings.generation ?? null, environment]);
}

/**
 * The snapshot of a bare runtime (Pyodide loaded, the WSGI adapter imported, no app),
 * shared by every app of this Python: each app's first worker starts from it instead
 * of booting cold, then imports its app and makes the app's own snapshot.
 */
export function locateRuntimeSnapshot(runtime: string, adapterSource: string, environment: Readonly<Record<string, string>> = {}): SnapshotFiles {
  return filesFor('runtime', [runtime, adapterSource, environment]);
}

/** The runtime snapshot kept in the cache directory between starts. */
export type DiskSnapshot = KeptFile;

const DISK_MAGIC = 'interpool runtime snapshot 1';

export function locateDiskRuntimeSnapshot(cacheDir: string, runtime: string, adapterSource: string, environment: Readonly<Record<string, string>> = {}): DiskSnapshot {
  const key = hashKey([runtime, adapterSource, environment]);
  return { path: join(cacheDir, `runtime-${runtime.replace(/[^\w.@-]/g, '_')}-${key}.snap`), key: `${runtime} ${key}` };
}

/**
 * The heap of a disk snapshot, or undefined when there is none. Throws, saying why, when
 * the file is not one of ours, was made for another build, or is cut short or damaged.
 */
export function readDiskSnapshot(disk: DiskSnapshot): Uint8Array | undefined {
  const file = readSnapshotFile(disk.path);
  return file && keptFileBody(file, disk, DISK_MAGIC, 'an interpool runtime snapshot');
}

/** Keep the runtime snapshot on disk (kept-file.ts). */
export function writeDiskSnapshot(disk: DiskSnapshot, heap: Uint8Array): void {
  writeKeptFile(disk, DISK_MAGIC, heap);
}

function hashKey(keyParts: unknown[]): string {
  return createHash('sha256').update(JSON.stringify(keyParts)).digest('hex').slice(0, 24);
}

function filesFor(kind: string, keyParts: unknown[]): SnapshotFiles {
  const key = hashKey(keyParts);
  const dir = join(snapshotRoot(), String(process.pid));
  mkdirSync(dir, { recursive: true });
  const base = join(dir, `${kind}-${key}`);
  return { snapshot: `${base}.snap`, lock: `${base}.lock`, refused: `${base}.refused` };
}

/**
 * Restore when a snapshot exists; make it when this worker wins the lock; else wait for
 * the worker that holds it. Never throws: any trouble means a cold boot, with the reason.
 */
export async function planSnapshot(files: SnapshotFiles, { staleMs = LOCK_STALE_MS }: PlanOptions = {}): Promise<SnapshotPlan> {
  try {
    for (;;) {
      const ready = readSnapshotFile(files.snapshot);
      if (ready) return { action: 'restore', bytes: ready };
      const refused = readIfExists(files.refused);
      if (refused) return { action: 'cold', reason: new TextDecoder().decode(refused) };
      if (tryLock(files.lock)) {
        // The holder may have finished between our look and our lock.
        const late = readSnapshotFile(files.snapshot);
        if (late) {
          rmSync(files.lock, { force: true });
          return { action: 'restore', bytes: late };
        }
        removeDeadProcessSnapshots();
        startHeartbeat(files.lock);
        return { action: 'make' };
      }
      if (lockAge(files.lock) > staleMs) return { action: 'cold', reason: 'the worker making the snapshot stopped before it finished' };
      await sleep(POLL_MS);
    }
  } catch (error) {
    return { action: 'cold', reason: `snapshot store unavailable: ${(error as Error).message}` };
  }
}

/** Publish the snapshot atomically (write aside, then rename) and release the lock. */
export function saveSnapshot(files: SnapshotFiles, bytes: Uint8Array): void {
  const aside = `${files.snapshot}.${threadId}.tmp`;
  try {
    writeFileSync(aside, bytes);
    renameSync(aside, files.snapshot);
  } finally {
    rmSync(aside, { force: true });
    releaseSnapshotLock(files);
  }
}

/** The app cannot be snapshotted: tell the waiting workers why, so they boot cold at once. */
export function refuseSnapshot(files: SnapshotFiles, reason: string): void {
  try {
    writeFileSync(files.refused, reason);
  } finally {
    releaseSnapshotLock(files);
  }
}

/** The maker failed before it could snapshot (e.g. the app does not import): let others try. */
export function releaseSnapshotLock(files: SnapshotFiles): void {
  clearInterval(heartbeats.get(files.lock));
  heartbeats.delete(files.lock);
  rmSync(files.lock, { force: true });
}

const heartbeats = new Map<string, NodeJS.Timeout>();

function startHeartbeat(lock: string): void {
  const timer = setInterval(() => {
    try {
      const now = new Date();
      utimesSync(lock, now, now);
    } catch {
      clearInterval(timer);
    }
  }, HEARTBEAT_MS);
  timer.unref();
  heartbeats.set(lock, timer);
}

function snapshotRoot(): string {
  return join(tmpdir(), SCRATCH_DIR_NAME);
}

/**
 * A snapshot file's bytes, read into memory of their own (a WebAssembly.Memory is mapped
 * by V8, not malloc'd): once restored they are unmapped, where a malloc'd buffer of 20-40
 * MB, freed, stayed in the reading thread's allocator arena as resident memory.
 */
function readSnapshotFile(path: string): Uint8Array | undefined {
  // (The project's TypeScript libraries do not declare WebAssembly.)
  const WasmMemory = (globalThis as unknown as { WebAssembly: { Memory: new (size: { initial: number }) => { buffer: ArrayBuffer } } }).WebAssembly.Memory;
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  try {
    const size = fstatSync(fd).size;
    const bytes = new Uint8Array(new WasmMemory({ initial: Math.max(1, Math.ceil(size / 65_536)) }).buffer, 0, size);
    for (let read = 0; read < size;) {
      const count = readSync(fd, bytes, read, size - read, read);
      if (count === 0) throw new Error(`${path} shrank while it was read`);
      read += count;
    }
    return bytes;
  } finally {
    closeSync(fd);
  }
}

function readIfExists(path: string): Uint8Array | undefined {
  try {
    return readFileSync(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

function tryLock(path: string): boolean {
  try {
    closeSync(openSync(path, 'wx'));
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw error;
  }
}

function lockAge(path: string): number {
  try {
    return Date.now() - statSync(path).mtimeMs;
  } catch {
    return 0;
  }
}

function removeDeadProcessSnapshots(): void {
  for (const name of readdirSync(snapshotRoot())) {
    const pid = Number(name);
    if (!Number.isInteger(pid) || pid === process.pid || isAlive(pid)) continue;
    rmSync(join(snapshotRoot(), name), { recursive: true, force: true });
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
