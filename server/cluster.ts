/**
 * --processes P: the primary process forks P server processes (node:cluster) that share
 * the listening socket, each with its own pools of interpreters — mod_wsgi's
 * `processes=P threads=N`. The primary serves nothing itself: it replaces a process that
 * dies, and passes SIGHUP (reload) and SIGTERM/SIGINT (graceful stop) on to all of them.
 * A process that holds more worker threads stuck in C code than --max-stuck-threads asks
 * to be replaced: a new process starts, and once it listens the old one stops gracefully.
 */
import cluster, { type Worker } from 'node:cluster';
import type { Logger } from 'pino';
import type { ServerConfig } from './config.ts';

/** A process that dies this soon after starting is failing to start, not crashing. */
const EARLY_EXIT_MS = 5_000;
const MAX_RESPAWN_DELAY_MS = 30_000;

export function runPrimary(config: ServerConfig, logger: Logger): Promise<never> {
  const started = new Map<Worker, number>();
  let stopping = false;
  let rapidExits = 0;
  let listening = 0;
  /** Processes asking to be replaced (process-replacement.ts): they stop once their replacement listens. */
  const replaced = new Set<Worker>();

  const fork = (): Worker => {
    const worker = cluster.fork();
    started.set(worker, Date.now());
    worker.once('listening', (address) => {
      if (++listening === config.processes) {
        logger.info({ processes: config.processes, port: address.port }, `interpool listening on http://${config.bind.host}:${address.port} with ${config.processes} processes`);
        if (!config.adminBind) logger.info(`admin dashboard at http://${config.bind.host}:${address.port}${config.adminPath} (each process's own; docs/admin.md)`);
      }
    });
    return worker;
  };

  cluster.on('message', (worker, message: { type?: string; reason?: string } | undefined) => {
    if (message?.type !== 'interpool:replace-me' || replaced.has(worker) || stopping) return;
    replaced.add(worker);
    logger.warn({ pid: worker.process.pid, reason: message.reason }, `replacing server process ${worker.process.pid}: ${message.reason ?? 'it asked'}`);
    fork().once('listening', () => worker.process.kill('SIGTERM'));
  });

  cluster.on('exit', (worker, code, signal) => {
    const lived = Date.now() - (started.get(worker) ?? Date.now());
    started.delete(worker);
    if (replaced.delete(worker) && !stopping) {
      logger.info({ pid: worker.process.pid, code, signal }, 'a replaced server process stopped');
      return;
    }
    if (stopping) {
      if (started.size === 0) {
        logger.info('all processes stopped');
        logger.flush();
        process.exit(0);
      }
      return;
    }
    // A process that cannot even start (bad app, port in use) would fail the same way
    // in every replacement: stop, with the child's own one-line error already printed.
    if (lived < EARLY_EXIT_MS && code === 2) {
      stopping = true;
      for (const other of started.keys()) other.process.kill('SIGTERM');
      process.exitCode = 2;
      if (started.size === 0) process.exit(2);
      return;
    }
    rapidExits = lived < EARLY_EXIT_MS ? rapidExits + 1 : 0;
    const delay = Math.min(MAX_RESPAWN_DELAY_MS, rapidExits === 0 ? 0 : 500 * 2 ** (rapidExits - 1));
    logger.error({ pid: worker.process.pid, code, signal, respawnInMs: delay }, 'a server process died; starting a replacement');
    setTimeout(fork, delay);
  });

  const stop = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'stopping every process: finishing in-flight requests');
    for (const worker of started.keys()) worker.process.kill('SIGTERM');
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  process.on('SIGHUP', () => {
    logger.info({ signal: 'SIGHUP' }, 'reloading every process');
    for (const worker of started.keys()) worker.process.kill('SIGHUP');
  });

  for (let i = 0; i < config.processes; i++) fork();
  return new Promise<never>(() => {});
}
