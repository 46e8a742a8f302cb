/**
 * The in-process shared store (the default): one per app, on the main thread, so it
 * outlives every interpreter, a crash and a reload. Every operation runs to its end in
 * one turn of the main thread's event loop, which makes each atomic with respect to
 * every worker without a lock of its own.
 *
 * Expired keys are dropped when met, and by a sweep every few seconds, so that a store
 * written once and never read again does not hold its memory.
 */
import { randomBytes } from 'node:crypto';
import { OpsMeter } from './ops-meter.ts';
import {
  ENCODED_NULL, SharedStoreError, lockNameOf,
  type LockOwner, type SharedStore, type SharedStoreLimits, type SharedStoreStats,
} from './store.ts';

interface Entry {
  value: string;
  /** Date.now() after which the entry is gone; 0: never. */
  expires: number;
  /** Bytes of key and value, counted against --shared-store-max-bytes. */
  bytes: number;
}

interface HeldLock {
  token: string;
  owner: LockOwner;
  expiry: NodeJS.Timeout;
}

interface LockWaiter {
  owner: LockOwner;
  expireSeconds: number;
  grant(token: string): void;
  timer: NodeJS.Timeout;
}

const SWEEP_MS = 5000;

export class MemoryStore implements SharedStore {
  readonly #limits: SharedStoreLimits;
  readonly #entries = new Map<string, Entry>();
  #bytes = 0;
  readonly #locks = new Map<string, HeldLock>();
  readonly #waiters = new Map<string, LockWaiter[]>();
  readonly #meter = new OpsMeter();
  readonly #sweeper: NodeJS.Timeout;

  constructor(limits: SharedStoreLimits) {
    this.#limits = limits;
    this.#sweeper = setInterval(() => this.#sweep(), SWEEP_MS).unref();
  }

  async get(key: string): Promise<string | undefined> {
    this.#meter.count();
    return this.#live(key)?.value;
  }

  async set(key: string, value: string, ttlSeconds: number | undefined): Promise<void> {
    this.#meter.count();
    this.#put(key, value, ttlSeconds === undefined ? 0 : Date.now() + ttlSeconds * 1000);
  }

  async delete(key: string): Promise<boolean> {
    this.#meter.count();
    const entry = this.#live(key);
    if (entry) this.#remove(key, entry);
    return entry !== undefined;
  }

  async incr(key: string, delta: number): Promise<number> {
    this.#meter.count();
    const entry = this.#live(key);
    const current = entry === undefined ? 0 : Number(entry.value);
    if (entry !== undefined && !(/^-?\d+$/.test(entry.value) && Number.isSafeInteger(current))) {
      throw new SharedStoreError('value', `cannot incr "${key}": it does not hold an integer`);
    }
    const next = current + delta;
    if (!Number.isSafeInteger(next)) throw new SharedStoreError('value', `cannot incr "${key}": the result is beyond ±2**53`);
    this.#put(key, String(next), entry?.expires ?? 0);
    return next;
  }

  async compareAndSet(key: string, expected: string | undefined, value: string): Promise<boolean> {
    this.#meter.count();
    const entry = this.#live(key);
    const matches = expected === undefined ? entry === undefined || entry.value === ENCODED_NULL : entry?.value === expected;
    if (!matches) return false;
    this.#put(key, value, entry?.expires ?? 0);
    return true;
  }

  async keys(prefix: string): Promise<string[]> {
    this.#meter.count();
    const now = Date.now();
    const found: string[] = [];
    for (const [key, entry] of this.#entries) {
      if (key.startsWith(prefix) && (entry.expires === 0 || entry.expires > now)) found.push(key);
    }
    return found.sort();
  }

  lock(name: string, owner: LockOwner, timeoutSeconds: number, expireSeconds: number): Promise<string> {
    this.#meter.count();
    if (!this.#locks.has(name)) return Promise.resolve(this.#hold(name, owner, expireSeconds));
    if (timeoutSeconds <= 0) return Promise.reject(lockTimeout(name, timeoutSeconds));
    return new Promise((resolve, reject) => {
      const waiter: LockWaiter = {
        owner,
        expireSeconds,
        grant: resolve,
        timer: setTimeout(() => {
          this.#dropWaiter(name, waiter);
          reject(lockTimeout(name, timeoutSeconds));
        }, timeoutSeconds * 1000),
      };
      const queue = this.#waiters.get(name);
      if (queue) queue.push(waiter);
      else this.#waiters.set(name, [waiter]);
    });
  }

  async unlock(token: string): Promise<boolean> {
    this.#meter.count();
    const name = lockNameOf(token);
    if (this.#locks.get(name)?.token !== token) return false;
    this.#release(name);
    return true;
  }

  releaseOwner(owner: LockOwner): void {
    for (const [name, queue] of this.#waiters) {
      for (const waiter of queue.filter((w) => w.owner === owner)) {
        clearTimeout(waiter.timer);
        this.#dropWaiter(name, waiter);
      }
    }
    for (const [name, held] of [...this.#locks]) if (held.owner === owner) this.#release(name);
  }

  stats(): SharedStoreStats {
    return { kind: 'memory', keys: this.#entries.size, bytes: this.#bytes, ops: this.#meter.total, opsPerSecond: this.#meter.perSecond, available: true };
  }

  async close(): Promise<void> {
    clearInterval(this.#sweeper);
    for (const held of this.#locks.values()) clearTimeout(held.expiry);
    for (const queue of this.#waiters.values()) for (const waiter of queue) clearTimeout(waiter.timer);
  }

  /** The entry, unless it expired (it is then dropped). */
  #live(key: string): Entry | undefined {
    const entry = this.#entries.get(key);
    if (entry && entry.expires !== 0 && entry.expires <= Date.now()) {
      this.#remove(key, entry);
      return undefined;
    }
    return entry;
  }

  #put(key: string, value: string, expires: number): void {
    const valueBytes = Buffer.byteLength(value);
    if (valueBytes > this.#limits.maxValueBytes) {
      throw new SharedStoreError('limit', `the value for "${key}" is ${valueBytes} bytes, over --shared-store-max-value (${this.#limits.maxValueBytes} bytes)`);
    }
    const bytes = Buffer.byteLength(key) + valueBytes;
    const old = this.#entries.get(key);
    const total = this.#bytes - (old?.bytes ?? 0) + bytes;
    if (total > this.#limits.maxStoreBytes) {
      throw new SharedStoreError('limit', `storing "${key}" would bring the app's store to ${total} bytes, over --shared-store-max-bytes (${this.#limits.maxStoreBytes} bytes)`);
    }
    this.#bytes = total;
    this.#entries.set(key, { value, expires, bytes });
  }

  #remove(key: string, entry: Entry): void {
    this.#entries.delete(key);
    this.#bytes -= entry.bytes;
  }

  #sweep(): void {
    const now = Date.now();
    for (const [key, entry] of this.#entries) if (entry.expires !== 0 && entry.expires <= now) this.#remove(key, entry);
  }

  #hold(name: string, owner: LockOwner, expireSeconds: number): string {
    const token = `${randomBytes(8).toString('hex')}:${name}`;
    // The expiry: a holder that never releases (stuck, or lost its token) frees it anyway.
    const expiry = setTimeout(() => { if (this.#locks.get(name)?.token === token) this.#release(name); }, expireSeconds * 1000).unref();
    this.#locks.set(name, { token, owner, expiry });
    return token;
  }

  /** Free the lock, and hand it to the first waiter, if any. */
  #release(name: string): void {
    const held = this.#locks.get(name);
    if (held) clearTimeout(held.expiry);
    this.#locks.delete(name);
    const waiter = this.#waiters.get(name)?.[0];
    if (!waiter) return;
    clearTimeout(waiter.timer);
    this.#dropWaiter(name, waiter);
    waiter.grant(this.#hold(name, waiter.owner, waiter.expireSeconds));
  }

  #dropWaiter(name: string, waiter: LockWaiter): void {
    const queue = this.#waiters.get(name);
    if (!queue) return;
    const at = queue.indexOf(waiter);
    if (at >= 0) queue.splice(at, 1);
    if (queue.length === 0) this.#waiters.delete(name);
  }
}

function lockTimeout(name: string, timeoutSeconds: number): SharedStoreError {
  return new SharedStoreError('timeout', `could not acquire the lock "${name}" within ${timeoutSeconds} s`);
}
