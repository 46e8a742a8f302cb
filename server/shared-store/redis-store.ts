/**
 * The Redis shared store (--shared-store redis://…): one connection per server process
 * (ioredis, on the main thread, never in an interpreter), each app under its own key
 * prefix, so that every process and machine naming the same Redis shares each app's
 * store. The same atomicity as in-process: single commands where one suffices (GET,
 * SET, INCRBY, DEL), Lua scripts for compare_and_set and a lock's release, and locks
 * as SET NX PX with a random token and an expiry.
 *
 * When Redis goes away the app's operations fail at once (no offline queue, a short
 * command timeout) with SharedStoreUnavailable, the server keeps serving, and ioredis
 * reconnects by itself; one log line when the connection goes, one when it is back.
 */
import { randomBytes } from 'node:crypto';
import { Redis, ReplyError } from 'ioredis';
import type { Logger } from 'pino';
import { OpsMeter } from './ops-meter.ts';
import {
  SharedStoreError, lockNameOf,
  type LockOwner, type SharedStore, type SharedStoreLimits, type SharedStoreStats,
} from './store.ts';

/** A command Redis does not answer within this is a failure, not a hang. */
const COMMAND_TIMEOUT_MS = 1000;
const CONNECT_TIMEOUT_MS = 2000;
/** Reconnect attempts back off up to this. */
const MAX_RECONNECT_DELAY_MS = 2000;
/** A lock waited for is tried again this often (with jitter). */
const LOCK_POLL_MS = 10;
/** The figures (keys, bytes) are counted again at most this often, and up to this many keys. */
const STATS_EVERY_MS = 5000;
const STATS_MAX_KEYS = 100_000;

/** compare_and_set: ARGV[1] "1" when there is an expected value (ARGV[2]), ARGV[3] the new one. */
const CAS_SCRIPT = `
local current = redis.call('GET', KEYS[1])
if ARGV[1] == '1' then
  if current ~= ARGV[2] then return 0 end
elseif current and current ~= 'null' then
  return 0
end
redis.call('SET', KEYS[1], ARGV[3], 'KEEPTTL')
return 1`;

/** A lock's release: only by the token it was given with. */
const UNLOCK_SCRIPT = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`;

interface ScriptedRedis extends Redis {
  interpoolCas(key: string, hasExpected: string, expected: string, value: string): Promise<number>;
  interpoolUnlock(key: string, token: string): Promise<number>;
}

/** The process's one connection, shared by every app's store. */
export class RedisConnection {
  readonly redis: ScriptedRedis;
  readonly where: string;
  #users = 0;
  #wasUp = false;

  constructor(url: string, log: Logger) {
    const parsed = new URL(url);
    this.where = `Redis at ${parsed.hostname}:${parsed.port || '6379'}`;
    const redis = new Redis(url, {
      enableOfflineQueue: false,
      commandTimeout: COMMAND_TIMEOUT_MS,
      connectTimeout: CONNECT_TIMEOUT_MS,
      maxRetriesPerRequest: 0,
      retryStrategy: (times) => Math.min(times * 100, MAX_RECONNECT_DELAY_MS),
      lazyConnect: false,
    });
    redis.defineCommand('interpoolCas', { numberOfKeys: 1, lua: CAS_SCRIPT });
    redis.defineCommand('interpoolUnlock', { numberOfKeys: 1, lua: UNLOCK_SCRIPT });
    this.redis = redis as ScriptedRedis;
    // ioredis reports each failed reconnect as an 'error': one line when the connection
    // goes, one when it is back, not one a reconnect.
    let up = false;
    redis.on('error', () => {});
    redis.on('close', () => {
      if (!up) return;
      up = false;
      log.warn(`shared store: ${this.where} is unavailable (connection closed); apps get SharedStoreUnavailable until it is back, reconnecting`);
    });
    redis.on('ready', () => {
      if (this.#wasUp) log.info(`shared store: ${this.where} is back`);
      up = true;
      this.#wasUp = true;
    });
  }

  get ready(): boolean {
    return this.redis.status === 'ready';
  }

  use(): void {
    this.#users++;
  }

  async release(): Promise<void> {
    if (--this.#users > 0) return;
    this.redis.disconnect();
  }
}

export class RedisStore implements SharedStore {
  readonly #connection: RedisConnection;
  readonly #redis: ScriptedRedis;
  readonly #limits: SharedStoreLimits;
  /** Every key of this app's store starts with this. */
  readonly #prefix: string;
  readonly #meter = new OpsMeter();
  /** Tokens of the locks each worker holds, released when it exits. */
  readonly #held = new Map<LockOwner, Set<string>>();
  /** Lock waits under way, by worker: a worker that exits meanwhile is marked gone. */
  readonly #waiting = new Map<LockOwner, number>();
  /** Workers that exited while they waited for a lock: those waits give up. */
  readonly #gone = new Set<LockOwner>();
  #figures = { keys: 0, bytes: 0, at: 0 };
  #counting = false;
  #closed = false;

  constructor(connection: RedisConnection, app: string, limits: SharedStoreLimits) {
    this.#connection = connection;
    this.#redis = connection.redis;
    this.#limits = limits;
    this.#prefix = `interpool:${app}:`;
    connection.use();
  }

  async get(key: string): Promise<string | undefined> {
    this.#meter.count();
    return (await this.#run(() => this.#redis.get(this.#valueKey(key)))) ?? undefined;
  }

  async set(key: string, value: string, ttlSeconds: number | undefined): Promise<void> {
    this.#meter.count();
    this.#checkSize(key, value);
    const name = this.#valueKey(key);
    const ms = ttlSeconds === undefined ? 0 : Math.max(1, Math.round(ttlSeconds * 1000));
    await this.#run(() => (ms > 0 ? this.#redis.set(name, value, 'PX', ms) : this.#redis.set(name, value)));
  }

  async delete(key: string): Promise<boolean> {
    this.#meter.count();
    return (await this.#run(() => this.#redis.del(this.#valueKey(key)))) > 0;
  }

  async incr(key: string, delta: number): Promise<number> {
    this.#meter.count();
    try {
      const next = await this.#run(() => this.#redis.incrby(this.#valueKey(key), delta));
      return Number(next);
    } catch (error) {
      if (error instanceof ReplyError) throw new SharedStoreError('value', `cannot incr "${key}": it does not hold an integer`);
      throw error;
    }
  }

  async compareAndSet(key: string, expected: string | undefined, value: string): Promise<boolean> {
    this.#meter.count();
    this.#checkSize(key, value);
    const done = await this.#run(() => this.#redis.interpoolCas(this.#valueKey(key), expected === undefined ? '0' : '1', expected ?? '', value));
    return done === 1;
  }

  async keys(prefix: string): Promise<string[]> {
    this.#meter.count();
    const found = await this.#scan(`${this.#prefix}k:${prefix}`, Infinity);
    return found.map((name) => name.slice(this.#prefix.length + 2)).sort();
  }

  async lock(name: string, owner: LockOwner, timeoutSeconds: number, expireSeconds: number): Promise<string> {
    this.#meter.count();
    this.#waiting.set(owner, (this.#waiting.get(owner) ?? 0) + 1);
    try {
      return await this.#acquire(name, owner, timeoutSeconds, expireSeconds);
    } finally {
      const left = this.#waiting.get(owner)! - 1;
      if (left > 0) {
        this.#waiting.set(owner, left);
      } else {
        this.#waiting.delete(owner);
        this.#gone.delete(owner);
      }
    }
  }

  async #acquire(name: string, owner: LockOwner, timeoutSeconds: number, expireSeconds: number): Promise<string> {
    const token = `${randomBytes(8).toString('hex')}:${name}`;
    const deadline = Date.now() + timeoutSeconds * 1000;
    const ms = Math.max(1, Math.round(expireSeconds * 1000));
    for (;;) {
      const taken = await this.#run(() => this.#redis.set(this.#lockKey(name), token, 'PX', ms, 'NX'));
      if (taken === 'OK') {
        if (this.#gone.has(owner)) {
          // The worker ended while it waited: nobody will release this lock.
          await this.unlock(token);
          throw new SharedStoreError('timeout', `the interpreter waiting for the lock "${name}" ended`);
        }
        const tokens = this.#held.get(owner) ?? new Set<string>();
        this.#held.set(owner, tokens.add(token));
        return token;
      }
      if (Date.now() >= deadline || this.#gone.has(owner) || this.#closed) {
        throw new SharedStoreError('timeout', `could not acquire the lock "${name}" within ${timeoutSeconds} s`);
      }
      await new Promise((resolve) => setTimeout(resolve, Math.min(LOCK_POLL_MS * (0.5 + Math.random()), Math.max(1, deadline - Date.now()))));
    }
  }

  async unlock(token: string): Promise<boolean> {
    this.#meter.count();
    for (const tokens of this.#held.values()) tokens.delete(token);
    return (await this.#run(() => this.#redis.interpoolUnlock(this.#lockKey(lockNameOf(token)), token))) === 1;
  }

  releaseOwner(owner: LockOwner): void {
    if (this.#waiting.has(owner)) this.#gone.add(owner);
    const tokens = this.#held.get(owner);
    this.#held.delete(owner);
    // If Redis is out of reach, the lock's expiry frees it.
    for (const token of tokens ?? []) this.unlock(token).catch(() => {});
  }

  stats(): SharedStoreStats {
    if (Date.now() - this.#figures.at > STATS_EVERY_MS) void this.#countFigures();
    const { keys, bytes } = this.#figures;
    return { kind: 'redis', keys, bytes, ops: this.#meter.total, opsPerSecond: this.#meter.perSecond, available: this.#connection.ready };
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#connection.release();
  }

  #valueKey(key: string): string {
    return `${this.#prefix}k:${key}`;
  }

  #lockKey(name: string): string {
    return `${this.#prefix}l:${name}`;
  }

  #checkSize(key: string, value: string): void {
    const bytes = Buffer.byteLength(value);
    if (bytes > this.#limits.maxValueBytes) {
      throw new SharedStoreError('limit', `the value for "${key}" is ${bytes} bytes, over --shared-store-max-value (${this.#limits.maxValueBytes} bytes)`);
    }
  }

  /** A command; a failure to reach Redis becomes SharedStoreUnavailable. */
  async #run<T>(command: () => Promise<T>): Promise<T> {
    if (!this.#connection.ready) throw this.#unavailable('not connected');
    try {
      return await command();
    } catch (error) {
      if (error instanceof ReplyError || error instanceof SharedStoreError) throw error;
      throw this.#unavailable((error as Error).message);
    }
  }

  #unavailable(reason: string): SharedStoreError {
    return new SharedStoreError('unavailable', `the shared store (${this.#connection.where}) is unavailable: ${reason}`);
  }

  /** Every key under `prefix` (up to `max`), by SCAN: never blocks Redis as KEYS would. */
  async #scan(prefix: string, max: number): Promise<string[]> {
    const pattern = `${prefix.replace(/[*?[\]\\]/g, '\\$&')}*`;
    const found: string[] = [];
    let cursor = '0';
    do {
      const [next, names] = await this.#run(() => this.#redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000));
      cursor = next;
      found.push(...names);
    } while (cursor !== '0' && found.length < max);
    return found;
  }

  async #countFigures(): Promise<void> {
    if (this.#counting || !this.#connection.ready) return;
    this.#counting = true;
    try {
      const names = await this.#scan(`${this.#prefix}k:`, STATS_MAX_KEYS);
      let bytes = 0;
      for (let i = 0; i < names.length; i += 500) {
        const batch = names.slice(i, i + 500);
        const pipeline = this.#redis.pipeline();
        for (const name of batch) pipeline.strlen(name);
        const lengths = (await pipeline.exec()) ?? [];
        batch.forEach((name, at) => { bytes += Buffer.byteLength(name) - this.#prefix.length - 2 + Number(lengths[at]?.[1] ?? 0); });
      }
      this.#figures = { keys: names.length, bytes, at: Date.now() };
    } catch {
      // Figures are best effort: the next stats() tries again.
    } finally {
      this.#counting = false;
    }
  }
}
