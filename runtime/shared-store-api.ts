/**
 * `environ['interpool.shared']` for JS apps: the app's shared store, every operation a
 * Promise (docs/shared-store.md). The shape is Python's (runtime/wsgi.py), so that an
 * app moves between the two without surprise: get, set, delete, incr,
 * compare_and_set (also compareAndSet), keys, lock.
 */
import type { SharedStoreErrorKind, SharedStoreReply } from './protocol.ts';
import { sharedStoreClient } from './shared-store-client.ts';
import { decodeSharedValue, encodeSharedValue } from './shared-value.ts';

/** The store is out of reach (Redis went away): the app may retry later. */
export class SharedStoreUnavailable extends Error {
  override name = 'SharedStoreUnavailable';
}

/** A lock held: release it once (later calls answer false). */
export interface HeldLock {
  readonly name: string;
  release(): Promise<boolean>;
}

const DEFAULT_LOCK_TIMEOUT_S = 5;
const DEFAULT_LOCK_EXPIRE_S = 30;

export class SharedStore {
  async get(key: string, defaultValue: unknown = null): Promise<unknown> {
    const result = await run({ op: 'get', key: checkKey(key) });
    return result === undefined ? defaultValue : decodeSharedValue(result as string);
  }

  async set(key: string, value: unknown, ttl: number | null = null): Promise<void> {
    const call = { op: 'set' as const, key: checkKey(key), value: encodeSharedValue(value) };
    await run(ttl === null || ttl === undefined ? call : { ...call, ttl: checkSeconds(ttl, 'ttl') });
  }

  async delete(key: string): Promise<boolean> {
    return await run({ op: 'delete', key: checkKey(key) }) as boolean;
  }

  async incr(key: string, delta = 1): Promise<number> {
    if (!Number.isSafeInteger(delta)) throw new TypeError(`incr's delta must be an integer, got ${String(delta)}`);
    return await run({ op: 'incr', key: checkKey(key), delta }) as number;
  }

  async compare_and_set(key: string, expected: unknown, value: unknown): Promise<boolean> {
    const call = { op: 'cas' as const, key: checkKey(key), value: encodeSharedValue(value) };
    return await run(expected === null || expected === undefined ? call : { ...call, expected: encodeSharedValue(expected) }) as boolean;
  }

  compareAndSet(key: string, expected: unknown, value: unknown): Promise<boolean> {
    return this.compare_and_set(key, expected, value);
  }

  async keys(prefix = ''): Promise<string[]> {
    if (typeof prefix !== 'string') throw new TypeError(`a shared store prefix must be a string, not ${typeof prefix}`);
    return await run({ op: 'keys', key: prefix }) as string[];
  }

  /** Wait up to `timeout` seconds for the named lock; it expires after `expire` seconds. */
  async lock(name: string, timeout = DEFAULT_LOCK_TIMEOUT_S, expire = DEFAULT_LOCK_EXPIRE_S): Promise<HeldLock> {
    const key = checkKey(name);
    const token = await run({ op: 'lock', key, timeout: checkSeconds(timeout, 'timeout'), ttl: checkSeconds(expire, 'expire') }) as string;
    let released = false;
    return {
      name: key,
      release: async () => {
        if (released) return false;
        released = true;
        return await run({ op: 'unlock', key, token }) as boolean;
      },
    };
  }
}

async function run(call: Parameters<typeof sharedStoreClient.call>[0]): Promise<Extract<SharedStoreReply, { ok: true }>['result']> {
  const reply = await sharedStoreClient.call(call);
  if (reply.ok) return reply.result;
  throw toError(reply.kind, reply.message);
}

function toError(kind: SharedStoreErrorKind, message: string): Error {
  switch (kind) {
    case 'type': return new TypeError(message);
    case 'limit': return new RangeError(message);
    case 'unavailable': return new SharedStoreUnavailable(message);
    case 'timeout': {
      const error = new Error(message);
      error.name = 'TimeoutError';
      return error;
    }
    default: return new Error(message);
  }
}

function checkKey(key: unknown): string {
  if (typeof key !== 'string') throw new TypeError(`shared store keys must be strings, not ${key === null ? 'null' : typeof key}`);
  return key;
}

function checkSeconds(value: unknown, what: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) throw new TypeError(`${what} must be a number of seconds, 0 or more, got ${String(value)}`);
  return value;
}

/** The one store object of this worker (the app's store; every request sees the same). */
export const sharedStore = new SharedStore();
