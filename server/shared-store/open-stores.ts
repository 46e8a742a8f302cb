/**
 * Each app's shared store, as --shared-store says: in this process (one MemoryStore an
 * app), or in Redis (one connection for the process, each app under its own prefix).
 * Each store is its ApplicationGroup's, which closes it at shutdown.
 */
import type { Logger } from 'pino';
import type { ServerConfig } from '../config.ts';
import { MemoryStore } from './memory-store.ts';
import { RedisConnection, RedisStore } from './redis-store.ts';
import type { SharedStore, SharedStoreLimits } from './store.ts';

export interface SharedStores {
  forApp(appName: string): SharedStore;
  /**
   * Resolves once the store can serve (Redis connected), or after a short wait if it
   * cannot: the server starts anyway, and the apps get SharedStoreUnavailable until
   * Redis is reachable.
   */
  ready(): Promise<void>;
}

const READY_WAIT_MS = 3000;

export function openSharedStores(config: Pick<ServerConfig, 'sharedStore' | 'sharedStoreMaxValue' | 'sharedStoreMaxBytes'>, log: Logger): SharedStores {
  const limits: SharedStoreLimits = { maxValueBytes: config.sharedStoreMaxValue, maxStoreBytes: config.sharedStoreMaxBytes };
  if (config.sharedStore === 'memory') return { forApp: () => new MemoryStore(limits), ready: () => Promise.resolve() };
  const connection = new RedisConnection(config.sharedStore, log);
  return {
    forApp: (appName) => new RedisStore(connection, appName, limits),
    ready: () => new Promise<void>((resolve) => {
      if (connection.ready) return resolve();
      const timer = setTimeout(() => {
        connection.redis.off('ready', done);
        log.warn(`shared store: ${connection.where} is not reachable yet; the apps start without it and get SharedStoreUnavailable until it is`);
        resolve();
      }, READY_WAIT_MS);
      const done = () => { clearTimeout(timer); resolve(); };
      connection.redis.once('ready', done);
    }),
  };
}
