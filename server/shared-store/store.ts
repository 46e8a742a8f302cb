/**
 * What every kind of shared store does (docs/shared-store.md): the in-process one
 * (memory-store.ts) and Redis (redis-store.ts). Values are their stored form, the
 * canonical JSON text of runtime/protocol.ts SharedStoreRequest, so a store never
 * interprets them except for incr (an integer's text).
 */
import type { SharedStoreErrorKind } from '../../runtime/protocol.ts';

/** How an operation failed; the app sees it as an exception of its own language. */
export class SharedStoreError extends Error {
  readonly kind: SharedStoreErrorKind;

  constructor(kind: SharedStoreErrorKind, message: string) {
    super(message);
    this.kind = kind;
  }
}

/** One app's figures, for the dashboard and /metrics. */
export interface SharedStoreStats {
  kind: 'memory' | 'redis';
  keys: number;
  bytes: number;
  /** Operations since the server started (this process). */
  ops: number;
  /** Operations a second, over the last few seconds. */
  opsPerSecond: number;
  /** Redis only: whether the connection is up. */
  available: boolean;
}

export interface SharedStoreLimits {
  /** --shared-store-max-value: bytes of one stored value. */
  maxValueBytes: number;
  /** --shared-store-max-bytes: bytes of all keys and values of one app. */
  maxStoreBytes: number;
}

/** A lock's holder: the worker (thread id, unique in this process) that took it. */
export type LockOwner = number;

export interface SharedStore {
  /** The encoded value, or undefined when missing (or expired). */
  get(key: string): Promise<string | undefined>;
  set(key: string, value: string, ttlSeconds: number | undefined): Promise<void>;
  delete(key: string): Promise<boolean>;
  /** A missing key counts as 0; keeps the key's expiry. */
  incr(key: string, delta: number): Promise<number>;
  /** `expected` undefined matches a missing key, or a stored null. */
  compareAndSet(key: string, expected: string | undefined, value: string): Promise<boolean>;
  keys(prefix: string): Promise<string[]>;
  /** A token (which names the lock), or a SharedStoreError 'timeout'. */
  lock(name: string, owner: LockOwner, timeoutSeconds: number, expireSeconds: number): Promise<string>;
  /** False when the lock was no longer held with this token (it expired). */
  unlock(token: string): Promise<boolean>;
  /** The worker ended: the locks it holds are released and its waits dropped. */
  releaseOwner(owner: LockOwner): void;
  stats(): SharedStoreStats;
  close(): Promise<void>;
}

/** A lock's token: random, then the lock's name (so that the token alone finds it). */
export function lockNameOf(token: string): string {
  const colon = token.indexOf(':');
  return colon < 0 ? '' : token.slice(colon + 1);
}

/** The stored form of null: compare_and_set's "expected None" also matches it. */
export const ENCODED_NULL = 'null';

/** Keys at most this long (bytes of UTF-8): a key is a name, not a value. */
export const MAX_KEY_BYTES = 1024;
