/**
 * When only a new process can help: a server process asks the primary (server/cluster.ts,
 * --processes) to start its replacement, which takes over once it listens. Alone, the
 * process says what holds it and that a restart (or --processes) is the way out.
 *
 * - Threads stuck in C code, more than --max-stuck-threads: they cannot be ended.
 * - An app whose C extension loads in one interpreter per process (PyO3, Cython) and
 *   that no interpreter of this process can serve any more: it served, then its
 *   interpreter was recycled or replaced, and every new one is refused. mod_wsgi's
 *   daemon processes are restarted at maximum-requests in the same way.
 */
import cluster from 'node:cluster';
import type { Logger } from 'pino';
import { channels, type ProcessWanted, type ThreadsStuck } from './diagnostics.ts';
import type { ApplicationGroup } from './pool/application-group.ts';

export function countStuckThreads(groups: readonly ApplicationGroup[]): number {
  return groups.reduce((sum, group) => sum + group.stuckThreads, 0);
}

export function watchForProcessReplacement(groups: readonly ApplicationGroup[], maxStuckThreads: number, logger: Logger): void {
  let asked = false;
  const ask = (reason: string, fields: Record<string, unknown>): void => {
    if (asked) return;
    asked = true;
    logger.error(fields, `${reason}: asking for a replacement process`);
    process.send?.({ type: 'interpool:replace-me', reason });
  };
  channels.threadsStuck.subscribe((message) => {
    const stuck = countStuckThreads(groups);
    if (stuck <= maxStuckThreads) return;
    if (!cluster.isWorker) {
      logger.warn({ stuck }, `${stuck} worker threads are stuck in C code: they stay until the process ends (--processes replaces a process that holds more than --max-stuck-threads)`);
      return;
    }
    ask(`${stuck} worker threads stuck in C code, more than --max-stuck-threads`, { app: (message as ThreadsStuck).app, stuck, maxStuckThreads });
  });
  let told = false;
  channels.processWanted.subscribe((message) => {
    const { app, reason } = message as ProcessWanted;
    if (cluster.isWorker) {
      ask(`app ${app} can only be served by a new process (${reason})`, { app });
      return;
    }
    if (told) return;
    told = true;
    logger.error({ app }, `app ${app} can only be served by a new process (${reason}): it stays unavailable until the server restarts; --processes N replaces such a process on its own`);
  });
}
