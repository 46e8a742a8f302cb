// The per-app memory snapshot: the lock that makes one worker build it while the others
// wait, and real Pyodide interpreters booting cold, then restoring from it and serving.
import { mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MessageChannel } from 'node:worker_threads';
import { afterAll, describe, expect, it } from 'vitest';
import { BootTimer } from '../../runtime/interpreter.ts';
import { bootPython } from '../../runtime/interpreters/python.ts';
import {
  locateDiskRuntimeSnapshot, locateSnapshot, planSnapshot, readDiskSnapshot, refuseSnapshot, releaseSnapshotLock, saveSnapshot, writeDiskSnapshot,
  type SnapshotFiles,
} from '../../runtime/interpreters/python-snapshot.ts';
import { CONTROL_SLOTS, type StreamMessage, type WorkerSpec } from '../../runtime/protocol.ts';
import { ResponseWriter } from '../../runtime/response-writer.ts';

const dir = mkdtempSync(join(tmpdir(), 'interpool-snapshot-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let appCount = 0;
/** A fresh app file, so that each test gets snapshot files of its own. */
function freshApp(source = 'def application(environ, start_response):\n    start_response("200 OK", [("Content-Type", "text/plain")])\n    return [b"hi"]\n'): WorkerSpec {
  const file = join(dir, `app${++appCount}.py`);
  writeFileSync(file, source);
  return { app: '/', kind: 'python', file, callable: 'application', settings: { python: '3.14', pythonPath: [] } } as unknown as WorkerSpec;
}

const filesOf = (spec: WorkerSpec): SnapshotFiles => locateSnapshot(spec, 'test-runtime', []);

describe('snapshot lock', () => {
  it('one of several concurrent workers makes the snapshot; the others wait and restore it', async () => {
    const files = filesOf(freshApp());
    const plans = [planSnapshot(files), planSnapshot(files), planSnapshot(files)];
    const first = await Promise.race(plans.map((plan, index) => plan.then((p) => ({ p, index }))));
    expect(first.p.action).toBe('make');
    saveSnapshot(files, new Uint8Array([1, 2, 3]));
    const all = await Promise.all(plans);
    expect(all.filter((p) => p.action === 'make')).toHaveLength(1);
    for (const p of all.filter((p) => p.action !== 'make')) {
      expect(p.action).toBe('restore');
      expect([...(p as { bytes: Uint8Array }).bytes]).toEqual([1, 2, 3]);
    }
  });

  it('a refused snapshot sends every waiting worker to a cold boot, with the reason', async () => {
    const files = filesOf(freshApp());
    expect((await planSnapshot(files)).action).toBe('make');
    const waiting = planSnapshot(files);
    refuseSnapshot(files, 'holds a JS object');
    expect(await waiting).toEqual({ action: 'cold', reason: 'holds a JS object' });
  });

  it('a lock whose holder failed before snapshotting passes to the next worker', async () => {
    const files = filesOf(freshApp());
    expect((await planSnapshot(files)).action).toBe('make');
    const waiting = planSnapshot(files);
    releaseSnapshotLock(files);
    expect((await waiting).action).toBe('make');
    releaseSnapshotLock(files);
  });

  it('a lock nobody touches any more is abandoned: cold boot', async () => {
    const files = filesOf(freshApp());
    writeFileSync(files.lock, '');
    const old = new Date(Date.now() - 60_000);
    utimesSync(files.lock, old, old);
    expect(await planSnapshot(files, { staleMs: 1000 })).toMatchObject({ action: 'cold', reason: expect.stringMatching(/stopped before it finished/) });
  });
});

describe('runtime snapshot on disk', () => {
  const heap = () => Uint8Array.from({ length: 4096 }, (_, i) => (i * 7) % 256);

  it('is read back as written, its heap 8-byte aligned in the file (Pyodide reads 32-bit words)', () => {
    const disk = locateDiskRuntimeSnapshot(join(dir, 'cache-a'), 'pyodide@314.0.7', 'adapter source');
    expect(readDiskSnapshot(disk)).toBeUndefined();
    writeDiskSnapshot(disk, heap());
    const read = readDiskSnapshot(disk)!;
    expect([...read]).toEqual([...heap()]);
    expect(read.byteOffset % 8).toBe(0);
  });

  it('is keyed by the Pyodide build and the adapter: another build or adapter never finds it', () => {
    const cache = join(dir, 'cache-b');
    const disk = locateDiskRuntimeSnapshot(cache, 'pyodide@314.0.7', 'adapter source');
    writeDiskSnapshot(disk, heap());
    expect(readDiskSnapshot(locateDiskRuntimeSnapshot(cache, 'pyodide@314.0.8', 'adapter source'))).toBeUndefined();
    expect(readDiskSnapshot(locateDiskRuntimeSnapshot(cache, 'pyodide@314.0.7', 'adapter source, changed'))).toBeUndefined();
    expect(readDiskSnapshot(locateDiskRuntimeSnapshot(cache, 'pyodide@314.0.7', 'adapter source'))).toBeDefined();
  });

  it('refuses a file made for another key, cut short, damaged or not one of ours, saying which', () => {
    const cache = join(dir, 'cache-c');
    const disk = locateDiskRuntimeSnapshot(cache, 'pyodide@314.0.7', 'adapter source');
    // Another build's file under this name (copied or renamed by hand).
    writeDiskSnapshot({ ...disk, key: 'pyodide@0.27.7 0123' }, heap());
    expect(() => readDiskSnapshot(disk)).toThrow(/made for "pyodide@0\.27\.7 0123"/);
    writeDiskSnapshot(disk, heap());
    const whole = readFileSync(disk.path);
    writeFileSync(disk.path, whole.subarray(0, whole.length - 100));
    expect(() => readDiskSnapshot(disk)).toThrow(/cut short/);
    const damaged = Buffer.from(whole);
    damaged[damaged.length - 10]! ^= 0xff;
    writeFileSync(disk.path, damaged);
    expect(() => readDiskSnapshot(disk)).toThrow(/damaged/);
    writeFileSync(disk.path, 'hello\nworld\n');
    expect(() => readDiskSnapshot(disk)).toThrow(/not an interpool runtime snapshot/);
  });
});

describe('Python interpreters from one snapshot', () => {
  const control = () => new Int32Array(new SharedArrayBuffer(CONTROL_SLOTS * 4));

  it('the first boots cold and snapshots, the next restores, and both serve', async () => {
    const spec = freshApp('import random\nTOKEN = random.random()\n\ndef application(environ, start_response):\n    start_response("200 OK", [("Content-Type", "text/plain")])\n    return [b"%f %f" % (TOKEN, random.random())]\n');
    const cold = new BootTimer();
    const first = await bootPython(spec, cold, control());
    const coldStages = cold.stages.map((s) => s.name);
    // The runtime itself comes from the runtime snapshot when an earlier app of this
    // process made it, else it is loaded (and snapshotted) here.
    expect(coldStages.slice(0, 3)).toEqual(['load runtime module', 'wait for snapshot', 'wait for runtime snapshot']);
    expect(['load runtime', 'restore runtime snapshot']).toContain(coldStages[3]);
    expect(coldStages.slice(-3)).toEqual(['mount paths', 'import app', 'make snapshot']);
    const warm = new BootTimer();
    const second = await bootPython(spec, warm, control());
    expect(warm.stages.map((s) => s.name)).toEqual(['load runtime module', 'wait for snapshot', 'restore snapshot', 'mount paths']);
    expect(second.version).toMatch(/^Python 3\.14\./);

    // A second app starts from the runtime snapshot, never cold.
    const other = new BootTimer();
    await bootPython(freshApp(), other, control());
    expect(other.stages.map((s) => s.name)).toEqual(expect.arrayContaining(['restore runtime snapshot', 'import app', 'make snapshot']));
    expect(other.stages.map((s) => s.name)).not.toContain('load runtime');

    const [a, b] = [await serve(first), await serve(second)];
    const [tokenA, drawA] = a.split(' ');
    const [tokenB, drawB] = b.split(' ');
    // The import-time value is the snapshot's; the random state is reseeded per interpreter.
    expect(tokenA).toBe(tokenB);
    expect(drawA).not.toBe(drawB);
    expect(second.memoryBytes!()).toBeGreaterThan(10 * 1024 * 1024);
    expect(second.healthy!()).toBe(true);
  }, 60_000);
});

async function serve(interpreter: Awaited<ReturnType<typeof bootPython>>): Promise<string> {
  const { port1, port2 } = new MessageChannel();
  const messages: StreamMessage[] = [];
  port2.on('message', (message: StreamMessage) => messages.push(message));
  const envelope = { id: 1, cgi: { REQUEST_METHOD: 'GET', PATH_INFO: '/', SCRIPT_NAME: '', QUERY_STRING: '', SERVER_NAME: 'localhost', SERVER_PORT: '80', SERVER_PROTOCOL: 'HTTP/1.1' }, urlScheme: 'http' as const, body: new Uint8Array() };
  const result = await interpreter.handle(envelope, new ResponseWriter(1, 0, port1, new Int32Array(new SharedArrayBuffer(CONTROL_SLOTS * 4))));
  port1.close();
  if (result.kind !== 'response') throw new Error(`expected a whole response, got ${JSON.stringify(result)}`);
  return (typeof result.body === 'string' ? Buffer.from(result.body, 'latin1') : Buffer.concat(result.body)).toString();
}
