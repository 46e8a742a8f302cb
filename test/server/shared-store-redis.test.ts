/**
 * The Redis shared store (--shared-store redis://…), against a real redis-server the
 * test starts on a free port: the same exact counts as in-process, across interpreters
 * and across --processes, and Redis going away and coming back while the server serves.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { missingPackages, redisCli, startRedis, type Service } from './python-network-services.ts';
import { getRequest, rawRequest, startChild, startTestServer, waitFor, type StartedChild, type TestServer } from './support.ts';
import { APPS, getJson, REQUESTS } from './shared-store-apps.ts';

const missing = missingPackages([['redis-server', '/usr/bin/redis-server']]);
if (missing.length > 0) console.warn('shared-store-redis.test.ts skipped: Debian package redis-server not installed');


function oneTo(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i + 1);
}

describe.skipIf(missing.length > 0)('the Redis shared store', () => {
  let redis: Service;
  let storeUrl: string;
  let t: TestServer | undefined;
  let child: StartedChild | undefined;

  beforeAll(async () => {
    redis = await startRedis();
    storeUrl = `redis://127.0.0.1:${redis.port}/0`;
  });
  afterEach(async () => {
    await t?.close();
    t = undefined;
    if (child) {
      const exited = new Promise((resolve) => child!.child.once('exit', resolve));
      child.child.kill('SIGTERM');
      await exited;
      child = undefined;
    }
  });
  afterAll(async () => {
    await redis?.stop();
  });

  describe.each(APPS)('%s app, 2 interpreters', (kind, file) => {
    // One server for the app: each test reads what it needs from it.
    let app: TestServer;
    beforeAll(async () => {
      redisCli(redis.port, 'flushall');
      app = await startTestServer([`/=${file}`, '--workers', '2', '--max-queue', '1000', '--shared-store', storeUrl]);
    }, 120_000);
    afterAll(() => app?.close());

    it(`${REQUESTS} concurrent incr answer 1..${REQUESTS} once each`, async () => {
      const url = app.url;
      const answers = await Promise.all(Array.from({ length: REQUESTS }, () => getJson(`${url}/incr`))) as number[];
      expect(answers.sort((a, b) => a - b)).toEqual(oneTo(REQUESTS));
      // Namespaced per app: the keys live under the app's prefix.
      expect(redisCli(redis.port, 'get', 'interpool:/:k:hits').trim()).toBe(String(REQUESTS));
    });

    it(`${REQUESTS} read-modify-writes under the lock lose nothing`, async () => {
      const url = app.url;
      const locked = await Promise.all(Array.from({ length: REQUESTS }, () => getJson(`${url}/locked`))) as number[];
      expect(locked.sort((a, b) => a - b)).toEqual(oneTo(REQUESTS));
    });

    it('a reload keeps the counts', async () => {
      const before = [await getJson(`${app.url}/get`), await getJson(`${app.url}/get-locked`)];
      expect((await app.server.reload())[0]!.ok).toBe(true);
      expect([await getJson(`${app.url}/get`), await getJson(`${app.url}/get-locked`)]).toEqual(before);
    });

    it('copies, compare_and_set, keys, the size limit and the dashboard\'s figures; the log stays clean', async () => {
      const url = app.url;
      expect(await getJson(`${url}/bad/size`)).toMatch(/over --shared-store-max-value \(1048576 bytes\)$/);
      const copy = await getJson(`${url}/copy`);
      expect(copy).toMatchObject({ first: [1, 2, 3], second: [1, 2], raw: [0, 255] });
      if (kind === 'python') expect(copy).toMatchObject({ cas: [false, true, true], fresh: 2, deleted: [true, false], keys: ['doc'] });
      // The dashboard's figures: counted from Redis in the background.
      const group = app.server.groups[0]!;
      const figures = await waitFor(() => { const stats = group.stats().sharedStore!; return stats.keys >= 3 && stats; }, 10_000, 'the figures');
      expect(figures).toMatchObject({ kind: 'redis', available: true });
      expect(figures.bytes).toBeGreaterThan(0);
      expect(app.logs.filter((line) => (line.level as number) >= 40)).toEqual([]);
    });

    it('a lock held by an interpreter that ends is released at once', async () => {
      redisCli(redis.port, 'del', 'interpool:/:l:doomed');
      t = await startTestServer([`/=${file}`, '--workers', '1', '--shared-store', storeUrl]);
      expect((await fetch(`${t.url}/doom`)).status).toBeGreaterThanOrEqual(500);
      expect(await getJson(`${t.url}/after-doom`)).toBe('acquired');
    }, 120_000);
  });

  it.each(APPS)('--processes 2 share one count (%s app)', async (_kind, file) => {
    redisCli(redis.port, 'flushall');
    child = await startChild([`/=${file}`, '/pid=test/fixtures/apps/shared-counter.ts', '--processes', '2', '--workers', '2', '--max-queue', '1000', '--shared-store', storeUrl]);
    const url = child.url;
    // Both processes serve (the primary hands new connections round robin).
    const port = Number(new URL(url).port);
    const pidOnNewConnection = async () => (await rawRequest(port, getRequest('/pid/pid'))).body.toString();
    await waitFor(async () => new Set(await Promise.all(Array.from({ length: 4 }, pidOnNewConnection))).size === 2, 90_000, 'both processes to serve');
    const answers = await Promise.all(Array.from({ length: REQUESTS }, () => getJson(`${url}/incr`))) as number[];
    expect(answers.sort((a, b) => a - b)).toEqual(oneTo(REQUESTS));
    expect(await getJson(`${url}/get`)).toBe(REQUESTS);
  }, 120_000);

  it.each(APPS)('Redis stopped: the %s app gets SharedStoreUnavailable at once and the server serves; started again: it works again', async (_kind, file) => {
    redisCli(redis.port, 'flushall');
    t = await startTestServer([`/=${file}`, '--workers', '1', '--shared-store', storeUrl]);
    expect(await getJson(`${t.url}/try-incr`)).toBe(1);
    await redis.stop();
    expect(await getJson(`${t.url}/try-incr`)).toMatch(/^SharedStoreUnavailable: the shared store \(Redis at 127\.0\.0\.1:\d+\) is unavailable/);
    expect(await getJson(`${t.url}/try-incr`)).toMatch(/^SharedStoreUnavailable: /);
    expect(t.server.groups[0]!.stats().sharedStore!.available).toBe(false);
    redis = await startRedis(redis.port);
    // Reconnects by itself: the data went with that Redis (nothing on disk), counting restarts.
    const url = t.url;
    await waitFor(async () => typeof await getJson(`${url}/try-incr`) === 'number', 20_000, 'the store to be back');
    expect(t.logs.some((line) => /shared store: Redis at 127\.0\.0\.1:\d+ is unavailable/.test(String(line.msg)))).toBe(true);
    expect(t.logs.some((line) => /shared store: Redis at 127\.0\.0\.1:\d+ is back/.test(String(line.msg)))).toBe(true);
  }, 120_000);
});
