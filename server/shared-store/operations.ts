/**
 * One request from a worker, checked and run against the app's store. The worker's
 * side checked the app's arguments already (and raised there, in the app's own terms);
 * this is the main thread's own check, so that no message can put the store in a
 * state it does not expect.
 */
import type { SharedStoreReply, SharedStoreRequest } from '../../runtime/protocol.ts';
import { MAX_KEY_BYTES, SharedStoreError, type LockOwner, type SharedStore } from './store.ts';

/** Locks wait at most this long, and last at most this long (seconds). */
const MAX_LOCK_SECONDS = 24 * 60 * 60;

export async function runOperation(store: SharedStore, request: SharedStoreRequest, owner: LockOwner): Promise<SharedStoreReply> {
  const { seq } = request;
  try {
    return { seq, ok: true, result: await dispatch(store, request, owner) };
  } catch (error) {
    if (error instanceof SharedStoreError) return { seq, ok: false, kind: error.kind, message: error.message };
    throw error;
  }
}

function dispatch(store: SharedStore, request: SharedStoreRequest, owner: LockOwner): Promise<string | number | boolean | string[] | undefined> {
  const key = checkKey(request.key, request.op === 'keys' ? 'prefix' : request.op === 'lock' || request.op === 'unlock' ? 'lock name' : 'key');
  switch (request.op) {
    case 'get': return store.get(key);
    case 'set': return store.set(key, checkValue(request.value), optionalSeconds(request.ttl, 'ttl')).then(() => undefined);
    case 'delete': return store.delete(key);
    case 'incr': return store.incr(key, checkDelta(request.delta));
    case 'cas': return store.compareAndSet(key, request.expected === undefined ? undefined : checkValue(request.expected), checkValue(request.value));
    case 'keys': return store.keys(key);
    case 'lock': return store.lock(key, owner, seconds(request.timeout, 'timeout'), seconds(request.ttl, 'expire') || 1);
    case 'unlock': return store.unlock(typeof request.token === 'string' ? request.token : '');
    default: throw new SharedStoreError('value', `unknown shared store operation ${JSON.stringify(request.op)}`);
  }
}

function checkKey(key: unknown, what: string): string {
  if (typeof key !== 'string') throw new SharedStoreError('type', `shared store ${what}s must be strings, not ${typeof key}`);
  if (Buffer.byteLength(key) > MAX_KEY_BYTES) throw new SharedStoreError('limit', `a shared store ${what} is ${MAX_KEY_BYTES} bytes at most, got ${Buffer.byteLength(key)}`);
  return key;
}

function checkValue(value: unknown): string {
  if (typeof value !== 'string') throw new SharedStoreError('type', 'a shared store value arrived without its stored form');
  return value;
}

function checkDelta(delta: unknown): number {
  if (typeof delta !== 'number' || !Number.isSafeInteger(delta)) throw new SharedStoreError('type', `incr's delta must be an integer, got ${String(delta)}`);
  return delta;
}

function seconds(value: unknown, what: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) throw new SharedStoreError('type', `${what} must be a number of seconds, 0 or more, got ${String(value)}`);
  return Math.min(value, MAX_LOCK_SECONDS);
}

function optionalSeconds(value: unknown, what: string): number | undefined {
  return value === undefined ? undefined : seconds(value, what);
}
