// The in-process shared store and the stored form of values, as pure units: expiry and
// lock timeouts run on fake timers (no real waiting, no timing assertions).
import { MessageChannel } from 'node:worker_threads';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { SharedStoreReply, SharedStoreRequest } from '../../runtime/protocol.ts';
import { decodeSharedValue, encodeSharedValue } from '../../runtime/shared-value.ts';
import { options } from '../../server/options.ts';
import { MemoryStore } from '../../server/shared-store/memory-store.ts';
import { SharedStoreError } from '../../server/shared-store/store.ts';
import { WorkerLink } from '../../server/shared-store/worker-link.ts';

const LIMITS = { maxValueBytes: 100, maxStoreBytes: 200 };

describe('the stored form of a JS value', () => {
  it.each([
    [null, 'null'],
    [true, 'true'],
    [1.5, '1.5'],
    ['é', '"é"'],
    [{ b: 1, a: [1, { d: null, c: 'x' }] }, '{"a":[1,{"c":"x","d":null}],"b":1}'],
    [new Uint8Array([0, 255]), '{"\\u0000":"AP8="}'],
  ])('%j is stored as %s and read back equal', (value, stored) => {
    expect(encodeSharedValue(value)).toBe(stored);
    expect(decodeSharedValue(stored)).toEqual(value);
  });

  it.each([
    [undefined, TypeError, /type undefined/],
    [new Date(0), TypeError, /type Date/],
    [new Map(), TypeError, /type Map/],
    [() => 1, TypeError, /type function/],
    [NaN, RangeError, /cannot hold NaN/],
    [{ '\u0000': 'x' }, RangeError, /may not have the key/],
  ])('refuses %s', (value, type, message) => {
    expect(() => encodeSharedValue(value)).toThrow(type);
    expect(() => encodeSharedValue(value)).toThrow(message);
  });

  it('refuses a cycle', () => {
    const cycle: unknown[] = [];
    cycle.push(cycle);
    expect(() => encodeSharedValue(cycle)).toThrow(/nest 64 levels at most/);
  });
});

describe('MemoryStore', () => {
  let store: MemoryStore;
  beforeEach(() => {
    vi.useFakeTimers();
    store = new MemoryStore(LIMITS);
  });
  afterEach(async () => {
    await store.close();
    vi.useRealTimers();
  });

  it('forgets a key at its ttl, and incr keeps the ttl', async () => {
    await store.set('k', '1', 10);
    expect(await store.incr('k', 2)).toBe(3);
    vi.advanceTimersByTime(9_999);
    expect(await store.get('k')).toBe('3');
    vi.advanceTimersByTime(1);
    expect(await store.get('k')).toBeUndefined();
    expect(await store.keys('')).toEqual([]);
    expect(store.stats()).toMatchObject({ keys: 0, bytes: 0 });
  });

  it('counts a missing key as 0 and refuses to incr what is not an integer', async () => {
    expect(await store.incr('n', -2)).toBe(-2);
    await store.set('s', '"5"', undefined);
    await expect(store.incr('s', 1)).rejects.toMatchObject({ kind: 'value', message: 'cannot incr "s": it does not hold an integer' });
    await store.set('f', '1.5', undefined);
    await expect(store.incr('f', 1)).rejects.toBeInstanceOf(SharedStoreError);
  });

  it('compare_and_set: an expected value, or none (a missing key or a stored null)', async () => {
    expect(await store.compareAndSet('k', undefined, '1')).toBe(true);
    expect(await store.compareAndSet('k', undefined, '2')).toBe(false);
    expect(await store.compareAndSet('k', '2', '3')).toBe(false);
    expect(await store.compareAndSet('k', '1', 'null')).toBe(true);
    expect(await store.compareAndSet('k', undefined, '4')).toBe(true);
    expect(await store.get('k')).toBe('4');
  });

  it('refuses a value over the value limit and a write over the store limit, naming the option, and keeps what it had', async () => {
    await expect(store.set('big', 'x'.repeat(101), undefined)).rejects.toMatchObject({ kind: 'limit', message: expect.stringMatching(/101 bytes, over --shared-store-max-value \(100 bytes\)/) });
    await store.set('a', 'x'.repeat(99), undefined);
    await store.set('b', 'x'.repeat(99), undefined);
    await expect(store.set('c', 'x'.repeat(10), undefined)).rejects.toMatchObject({ kind: 'limit', message: expect.stringMatching(/over --shared-store-max-bytes \(200 bytes\)/) });
    // Replacing a value counts the difference only.
    await store.set('a', 'y'.repeat(99), undefined);
    expect(store.stats()).toMatchObject({ keys: 2, bytes: 200 });
    expect(await store.delete('a')).toBe(true);
    expect(await store.delete('a')).toBe(false);
    expect(store.stats()).toMatchObject({ keys: 1, bytes: 100 });
  });

  it('hands a lock to its waiters in order, times a waiter out, and frees an expired lock', async () => {
    const first = await store.lock('l', 1, 5, 30);
    const second = store.lock('l', 2, 10, 30);
    const third = store.lock('l', 3, 1, 30);
    vi.advanceTimersByTime(1000);
    await expect(third).rejects.toMatchObject({ kind: 'timeout', message: 'could not acquire the lock "l" within 1 s' });
    expect(await store.unlock(first)).toBe(true);
    expect(await store.unlock(first)).toBe(false);
    const held = await second;
    // Nobody releases it: its expiry does.
    vi.advanceTimersByTime(30_000);
    expect(await store.unlock(held)).toBe(false);
    await store.lock('l', 4, 0, 30);
  });

  it('releases the locks of a worker that ends, and drops its waits', async () => {
    await store.lock('a', 7, 5, 60);
    await store.lock('b', 7, 5, 60);
    let settled = false;
    const mine = store.lock('a', 7, 5, 60).finally(() => { settled = true; });
    const other = store.lock('a', 9, 5, 60);
    store.releaseOwner(7);
    // Worker 7's own wait is dropped; worker 9 gets the lock at once.
    await expect(other).resolves.toMatch(/:a$/);
    await expect(store.lock('b', 8, 0, 60)).resolves.toMatch(/:b$/);
    await Promise.resolve();
    expect(settled).toBe(false);
    void mine;
  });
});

describe('WorkerLink', () => {
  /** A worker's end of the link, driven by hand: requests posted, replies read. */
  const linked = (store: MemoryStore, owner: number) => {
    const { port1, port2 } = new MessageChannel();
    const link = new WorkerLink(store, { port: port2, signal: new SharedArrayBuffer(4) }, owner, (error) => { throw error; });
    const replies = new Map<number, SharedStoreReply>();
    const waiting = new Map<number, (reply: SharedStoreReply) => void>();
    port1.on('message', (reply: SharedStoreReply) => {
      replies.set(reply.seq, reply);
      waiting.get(reply.seq)?.(reply);
    });
    return {
      post: (request: SharedStoreRequest) => port1.postMessage(request),
      reply: (seq: number) => replies.get(seq) ?? new Promise<SharedStoreReply>((resolve) => waiting.set(seq, resolve)),
      close: () => { link.close(); port1.close(); },
    };
  };

  it('releases a lock granted to a request its worker gave up (--timeout), before or after the grant', async () => {
    const store = new MemoryStore(LIMITS);
    const holder = linked(store, 1);
    const quitter = linked(store, 2);
    const other = linked(store, 3);
    try {
      holder.post({ seq: 1, op: 'lock', key: 'l', timeout: 5, ttl: 60 });
      const held = await holder.reply(1);
      // Given up while waiting: the grant that follows the holder's release goes nowhere.
      quitter.post({ seq: 1, op: 'lock', key: 'l', timeout: 30, ttl: 60 });
      quitter.post({ seq: 2, op: 'abandon', key: 'l', abandons: 1, noReply: true });
      holder.post({ seq: 2, op: 'unlock', key: 'l', token: (held as { result: string }).result });
      await holder.reply(2);
      other.post({ seq: 1, op: 'lock', key: 'l', timeout: 5, ttl: 60 });
      expect(await other.reply(1)).toMatchObject({ ok: true });
      // Given up after the grant was posted: released when the abandon arrives.
      quitter.post({ seq: 3, op: 'lock', key: 'm', timeout: 5, ttl: 60 });
      await quitter.reply(3);
      quitter.post({ seq: 4, op: 'abandon', key: 'm', abandons: 3, noReply: true });
      other.post({ seq: 2, op: 'lock', key: 'm', timeout: 5, ttl: 60 });
      expect(await other.reply(2)).toMatchObject({ ok: true });
    } finally {
      for (const end of [holder, quitter, other]) end.close();
      await store.close();
    }
  });
});

describe('--shared-store', () => {
  const parse = options.find((option) => option.name === 'sharedStore')!.parse as (raw: unknown, where: string) => string;
  it.each(['memory', 'redis://127.0.0.1:6379/0', 'rediss://:secret@redis.internal:6380/2', 'redis://redis'])('accepts %s', (raw) => {
    expect(parse(raw, '--shared-store')).toBe(raw);
  });
  it.each(['', 'redis', 'http://127.0.0.1:6379', 'redis://', 'redis:// host', 'Memory'])('refuses %j without echoing it (it may hold a password)', (raw) => {
    expect(() => parse(raw, '--shared-store')).toThrow('--shared-store must be memory or a redis:// or rediss:// URL (redis://[:PASSWORD@]HOST:PORT/DB)');
  });
});
