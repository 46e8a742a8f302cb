/**
 * The app's shared store (docs/shared-store.md), in-process: real servers, real
 * interpreters (Pyodide and V8), real HTTP. The counts are exact: any lost update or
 * duplicate answer fails them.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { engineTitle, nativeEngines } from './python-engines.ts';
import { startChild, startTestServer, waitFor, type TestServer } from './support.ts';
import { APPS, getJson, REQUESTS } from './shared-store-apps.ts';


function oneTo(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i + 1);
}

/** Log lines at warn or above: the store's failures in the app must leave none. */
function problems(t: TestServer): unknown[] {
  return t.logs.filter((line) => (line.level as number) >= 40);
}

describe.each(APPS)('the in-process shared store, %s app', (kind, file) => {
  // One server for the app, 2 interpreters: each test reads what it needs from it.
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer([`/=${file}`, '--workers', '2', '--max-queue', '1000']);
  }, 120_000);
  afterAll(() => t?.close());

  it(`${REQUESTS} concurrent incr over 2 interpreters answer 1..${REQUESTS} once each`, async () => {
    const url = t.url;
    const answers = await Promise.all(Array.from({ length: REQUESTS }, () => getJson(`${url}/incr`))) as number[];
    expect(answers.sort((a, b) => a - b)).toEqual(oneTo(REQUESTS));
    expect(await getJson(`${url}/get`)).toBe(REQUESTS);
    const stats = t.server.groups[0]!.stats().sharedStore!;
    expect(stats.keys).toBeGreaterThanOrEqual(1);
    expect(stats.ops).toBeGreaterThanOrEqual(REQUESTS + 1);
    expect(problems(t)).toEqual([]);
  });

  it('2 interpreters x 200 read-modify-write cycles under the lock lose no update', async () => {
    const url = t.url;
    const answers = await Promise.all(Array.from({ length: REQUESTS }, () => getJson(`${url}/locked`))) as number[];
    expect(answers.sort((a, b) => a - b)).toEqual(oneTo(REQUESTS));
    expect(await getJson(`${url}/get-locked`)).toBe(REQUESTS);
    const served = t.server.groups[0]!.stats().interpreters.map((worker) => worker.served);
    expect(served.filter((count) => count > 0)).toHaveLength(2);
    expect(problems(t)).toEqual([]);
  });

  it('the counts survive a reload (new interpreters, the same store)', async () => {
    const before = [await getJson(`${t.url}/get`), await getJson(`${t.url}/get-locked`)];
    const generation = t.server.groups[0]!.stats().generation;
    const [report] = await t.server.reload();
    expect(report!.ok).toBe(true);
    expect(t.server.groups[0]!.stats().generation).toBe(generation + 1);
    expect([await getJson(`${t.url}/get`), await getJson(`${t.url}/get-locked`)]).toEqual(before);
  });

  it('values read back are copies, bytes stay bytes', async () => {
    const copy = await getJson(`${t.url}/copy`) as Record<string, unknown>;
    expect(copy).toMatchObject({ first: [1, 2, 3], second: [1, 2], raw: [0, 255], same: false });
    expect(copy.bytes).toBe(kind === 'python' ? 'bytes' : 'Uint8Array');
    if (kind === 'python') {
      expect(copy).toMatchObject({ pair: [1, 'a'], f: 1.5, none: null, cas: [false, true, true], fresh: 2, deleted: [true, false], keys: ['doc'], is_interpool: true });
    }
  });

  it('a non-string key, an unsupported type and an oversized value are clear errors in the app; the log stays clean', async () => {
    const key = await getJson(`${t.url}/bad/key`);
    const type = await getJson(`${t.url}/bad/type`);
    const size = await getJson(`${t.url}/bad/size`);
    if (kind === 'python') {
      expect(key).toBe('TypeError: shared store keys must be str, not int');
      expect(type).toMatch(/^TypeError: the shared store cannot hold a value of type object/);
      expect(size).toMatch(/^ValueError: the value for "k" is 2097154 bytes, over --shared-store-max-value \(1048576 bytes\)$/);
      expect(await getJson(`${t.url}/bad/incr`)).toBe('ValueError: cannot incr "text": it does not hold an integer');
      expect(await getJson(`${t.url}/bad/lock-timeout`)).toBe('TimeoutError: could not acquire the lock "held" within 0 s');
    } else {
      expect(key).toBe('TypeError: shared store keys must be strings, not number');
      expect(type).toMatch(/^TypeError: the shared store cannot hold a value of type Date/);
      expect(size).toMatch(/^RangeError: the value for "k" is 2097154 bytes, over --shared-store-max-value \(1048576 bytes\)$/);
    }
    expect(problems(t)).toEqual([]);
  });

  it('a lock held by an interpreter that ends is released at once, not at its expiry', async () => {
    const one = await startTestServer([`/=${file}`, '--workers', '1']);
    try {
      expect((await fetch(`${one.url}/doom`)).status).toBeGreaterThanOrEqual(500);
      // The next interpreter waits 10 s at most for a lock that would expire in 60 s.
      expect(await getJson(`${one.url}/after-doom`)).toBe('acquired');
    } finally {
      await one.close();
    }
  }, 120_000);
});

describe('the in-process shared store of a server process', () => {
  it('survives a SIGHUP reload', async () => {
    const child = await startChild(['test/fixtures/apps/shared-counter.ts', '--workers', '2']);
    try {
      for (let i = 0; i < 10; i++) await getJson(`${child.url}/incr`);
      child.child.kill('SIGHUP');
      await waitFor(() => /reloaded: new interpreters serve/.test(child.output()), 20_000, 'the reload');
      expect(await getJson(`${child.url}/get`)).toBe(10);
    } finally {
      const exited = new Promise((resolve) => child.child.once('exit', resolve));
      child.child.kill('SIGTERM');
      await exited;
    }
  });
});

describe('the shared store of each app', () => {
  let t: TestServer | undefined;
  afterEach(async () => {
    await t?.close();
    t = undefined;
  });

  it('is its own: one app never sees another\'s keys', async () => {
    t = await startTestServer(['/a=test/fixtures/apps/shared-counter.ts', '/b=test/fixtures/apps/shared-counter.ts', '/py=test/fixtures/apps/shared-counter.py', '--workers', '1']);
    for (let i = 0; i < 3; i++) await getJson(`${t.url}/a/incr`);
    expect(await getJson(`${t.url}/a/get`)).toBe(3);
    expect(await getJson(`${t.url}/b/get`)).toBe(0);
    expect(await getJson(`${t.url}/py/get`)).toBe(0);
    // The Python app counted its import in its own store, not in the others'.
    expect(await getJson(`${t.url}/py/imports`)).toBeGreaterThanOrEqual(1);
  }, 120_000);
});

for (const engine of nativeEngines()) {
  describe.skipIf(engine.skip !== undefined)(`the in-process shared store, native engine: ${engineTitle(engine)}`, () => {
    let t: TestServer | undefined;
    afterEach(async () => {
      await t?.close();
      t = undefined;
    });

    it(`2 subinterpreters: ${REQUESTS} incr and ${REQUESTS} locked read-modify-writes exact, values copied, bad input raised in the app`, async () => {
      t = await startTestServer(['/=test/fixtures/apps/shared-counter.py', '--workers', '2', '--max-queue', '1000', ...engine.args]);
      const url = t.url;
      const answers = await Promise.all(Array.from({ length: REQUESTS }, () => getJson(`${url}/incr`))) as number[];
      expect(answers.sort((a, b) => a - b)).toEqual(oneTo(REQUESTS));
      const locked = await Promise.all(Array.from({ length: REQUESTS }, () => getJson(`${url}/locked`))) as number[];
      expect(locked.sort((a, b) => a - b)).toEqual(oneTo(REQUESTS));
      expect(await getJson(`${url}/copy`)).toMatchObject({ first: [1, 2, 3], second: [1, 2], raw: [0, 255], bytes: 'bytes', cas: [false, true, true] });
      expect(await getJson(`${url}/bad/key`)).toBe('TypeError: shared store keys must be str, not int');
      expect(await getJson(`${url}/bad/size`)).toMatch(/^ValueError: .* over --shared-store-max-value/);
      // Both interpreters counted their import (no snapshot natively).
      expect(await getJson(`${url}/imports`)).toBe(2);
      expect(problems(t)).toEqual([]);
    });
  });
}
