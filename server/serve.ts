/**
 * Start and stop a whole server: boot every app's pool, refuse to start when an app
 * cannot boot, listen, and shut down gracefully on SIGTERM/SIGINT.
 */
import cluster from 'node:cluster';
import { rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import type { AddressInfo } from 'node:net';
import { join, relative } from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { freesEndedInterpreters } from '../native/builds.ts';
import { SCRATCH_DIR_NAME } from '../runtime/protocol.ts';
import { ApplicationGroup, type ReloadOutcome } from './pool/application-group.ts';
import { buildServer } from './app.ts';
import { createAdmin } from './admin/admin.ts';
import { buildAdminServer } from './admin/listener.ts';
import { adminExposureWarning } from './admin/start-warning.ts';
import { resolveConfig, type AppConfig, type ConfigSources, type ServerConfig } from './config.ts';
import { InterpoolError } from './errors.ts';
import { runPrimary } from './cluster.ts';
import { watchForReload } from './file-watcher.ts';
import { openSharedStores } from './shared-store/open-stores.ts';
import { describeAllocator, hasNativeApp } from './process-tuning.ts';
import { createLogger } from './logger.ts';
import { ignoreUnusedSignals } from './ignored-signals.ts';
import { countStuckThreads, watchForProcessReplacement } from './process-replacement.ts';

export interface RunningServer {
  fastify: FastifyInstance;
  groups: readonly ApplicationGroup[];
  /** http://host:port the server listens on. */
  url: string;
  /** http://host:port of the --admin-bind listener, when there is one. */
  adminUrl?: string;
  /** Reload one app (by mount name, e.g. "/api") or every app, without downtime. */
  reload(app?: string): Promise<ReloadReport[]>;
  /** Stop accepting, let in-flight requests finish (up to gracefulTimeout), close the pools. */
  close(): Promise<void>;
}

export interface ReloadReport extends ReloadOutcome {
  app: string;
}

/**
 * Start every app's pool and wait for each app's first interpreter to report. An app
 * whose callable is missing stops the start (exit 2); one that fails to import is
 * logged with its traceback and serves 503 while its boot is retried.
 */
export async function bootApplications(config: ServerConfig, logger: Logger): Promise<ApplicationGroup[]> {
  const sharedStores = openSharedStores(config, logger);
  await sharedStores.ready();
  const groups = config.apps.map((app) => new ApplicationGroup(app, logger, sharedStores.forApp(app.name)));
  const started = await Promise.allSettled(groups.map((group) => group.start()));
  const refused = started.find((outcome) => outcome.status === 'rejected');
  if (refused) {
    await Promise.all(groups.map((group) => group.destroy()));
    throw (refused as PromiseRejectedResult).reason;
  }
  return groups;
}

export async function openServer(config: ServerConfig, logger: Logger): Promise<RunningServer> {
  const groups = await bootApplications(config, logger);
  const fastify = buildServer(config, groups, logger);
  try {
    await fastify.listen({ host: config.bind.host, port: config.bind.port, listenTextResolver: (url) => `interpool listening on ${url}` });
  } catch (error) {
    await Promise.all(groups.map((group) => group.destroy()));
    const reason = describeListenError(error as NodeJS.ErrnoException);
    throw new InterpoolError('INTERPOOL_ERR_LISTEN', [`${config.bind.host}:${config.bind.port}`, reason]);
  }
  const adminServer = config.adminBind ? await listenAdmin(config, groups, fastify, logger) : undefined;
  let closing: Promise<void> | undefined;
  return {
    fastify,
    groups,
    url: urlOf(fastify),
    ...(adminServer ? { adminUrl: urlOf(adminServer) } : {}),
    reload: (app) => reloadApps(groups, app),
    close: () => (closing ??= Promise.all([
      closeGracefully(fastify, groups, config.gracefulTimeout, logger),
      adminServer?.close(),
    ]).then(() => {})),
  };
}

function urlOf(fastify: FastifyInstance): string {
  const address = fastify.server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return `http://${host}:${address.port}`;
}

/** --admin-bind: the dashboard and /metrics on their own listener. */
async function listenAdmin(config: ServerConfig, groups: readonly ApplicationGroup[], fastify: FastifyInstance, logger: Logger): Promise<FastifyInstance> {
  const { host, port } = config.adminBind!;
  const adminServer = buildAdminServer(createAdmin(config, groups), logger);
  try {
    await adminServer.listen({ host, port, listenTextResolver: (url) => `interpool admin listening on ${url}${config.adminPath}` });
  } catch (error) {
    await fastify.close();
    await Promise.all(groups.map((group) => group.destroy()));
    throw new InterpoolError('INTERPOOL_ERR_LISTEN', [`${host}:${port} (--admin-bind)`, describeListenError(error as NodeJS.ErrnoException)]);
  }
  return adminServer;
}

async function reloadApps(groups: readonly ApplicationGroup[], app: string | undefined): Promise<ReloadReport[]> {
  const chosen = app === undefined ? groups : groups.filter((group) => group.config.name === app);
  return Promise.all(chosen.map(async (group) => ({ app: group.config.name, ...(await group.reload()) })));
}

/** How often a draining server closes connections that went idle. */
const IDLE_SWEEP_MS = 100;

async function closeGracefully(fastify: FastifyInstance, groups: readonly ApplicationGroup[], timeoutSeconds: number, logger: Logger): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<'timeout'>((resolve) => { timer = setTimeout(() => resolve('timeout'), timeoutSeconds * 1000); });
  // fastify.close() closes the keep-alive connections idle when it starts; one whose
  // response finishes during the drain would stay open until the client drops it.
  const sweep = setInterval(() => fastify.server.closeIdleConnections(), IDLE_SWEEP_MS);
  const outcome = await Promise.race([fastify.close().then(() => 'closed' as const), deadline]);
  clearInterval(sweep);
  clearTimeout(timer);
  if (outcome === 'timeout') {
    logger.warn({ gracefulTimeout: timeoutSeconds }, 'in-flight requests did not finish within --graceful-timeout; closing anyway');
    fastify.server.closeAllConnections();
    await Promise.all(groups.map((group) => group.destroy()));
    removeScratchFiles();
    return;
  }
  await Promise.all(groups.map((group) => group.close()));
  removeScratchFiles();
}

/** This process's scratch files (Python snapshots, 20-60 MB an app) go with it. */
function removeScratchFiles(): void {
  rmSync(join(tmpdir(), SCRATCH_DIR_NAME, String(process.pid)), { recursive: true, force: true });
}

function describeListenError(error: NodeJS.ErrnoException): string {
  switch (error.code) {
    case 'EADDRINUSE': return 'address already in use';
    case 'EACCES': return 'permission denied';
    case 'EADDRNOTAVAIL': return 'address not available on this machine';
    case 'ENOTFOUND': return 'unknown host';
    default: return error.message;
  }
}

/** For a --python native app: which CPython it embeds, from where, and what its GIL allows. */
function describeNativeEngine(settings: Readonly<Record<string, unknown>>, workers: number): string | undefined {
  if (settings.python !== 'native') return undefined;
  const version = String(settings.cpythonVersion);
  const where = `CPython ${version} (${String(settings.cpython)}, ${String(settings.cpythonSource)})`;
  const interpreters = `${workers} subinterpreter${workers === 1 ? '' : 's'}`;
  if (Number(version.split('.')[1]) < 12) {
    return `native engine on ${where}: ${interpreters} sharing one GIL (isolated, I/O concurrent, CPU work not parallel: use --processes, or a CPython 3.12 or later)`;
  }
  return settings.isolation === 'shared-gil'
    ? `native engine on ${where}: ${interpreters} sharing one GIL (--python-isolation shared-gil: isolated, I/O concurrent, CPU work not parallel: use --processes)`
    : `native engine on ${where}: ${interpreters}, each with its own GIL (Python runs in parallel)`;
}

/**
 * Exit once stopped. Node's exit joins every worker thread, and a thread stuck in C code
 * never returns: such a process ends itself with SIGKILL instead of hanging.
 */
function exitProcess(groups: readonly ApplicationGroup[], logger: Logger): void {
  const stuck = countStuckThreads(groups);
  if (stuck > 0) {
    logger.warn({ stuck }, `${stuck} worker threads are stuck in C code and cannot be joined: ending the process with SIGKILL`);
    logger.flush();
    process.kill(process.pid, 'SIGKILL');
    return;
  }
  logger.flush();
  process.exit(0);
}

/**
 * Own-GIL subinterpreters recycled by --max-requests or --memory-limit: a CPython 3.12 or
 * 3.13 not built by build:cpython keeps each ended one's interned strings, and with them
 * its allocator's arenas (docs/python.md, loadtest:native-recycle).
 */
function describeOwnGilRecycling(config: AppConfig): string | undefined {
  const { settings } = config;
  if (settings.python !== 'native' || settings.isolation === 'shared-gil' || Number(String(settings.cpythonVersion).split('.')[1]) < 12) return undefined;
  if (config.maxRequests <= 0 && config.memoryLimit <= 0) return undefined;
  if (freesEndedInterpreters(String(settings.cpython), String(settings.cpythonVersion))) return undefined;
  return 'each recycled own-GIL interpreter keeps about 1.7 MiB in this process (this CPython leaves the strings it interned in every interpreter it ends, and keeps their memory): '
    + 'use the project-built CPython (npm run build:cpython), recycle whole processes instead (--processes), or use a large --max-requests';
}

/** The `serve` command: resolve the config, start, print where, and handle signals. */
export async function startServer(sources: ConfigSources): Promise<RunningServer> {
  const config = resolveConfig(sources);
  const logger = createLogger(config.logLevel, config.logFormat);
  // First: until then SIGUSR1 would open Node's inspector (every process, the primary's too).
  ignoreUnusedSignals(logger);
  // Once, before listening (the primary's only, with --processes).
  const adminWarning = cluster.isPrimary ? adminExposureWarning(config) : undefined;
  if (adminWarning) logger.warn(adminWarning);
  const allocator = cluster.isPrimary ? describeAllocator(process.env) : undefined;
  if (allocator) {
    const settings = Object.entries(allocator.settings).map(([name, value]) => `${name}=${value}`).join(' ');
    logger.info({ allocator: allocator.settings, setBy: allocator.setBy }, allocator.setBy === 'interpool'
      ? `glibc allocator: ${settings}, set when the process started (--allocator-tuning off leaves it to the environment)`
      : `glibc allocator: ${settings}, from the environment`);
  } else if (cluster.isPrimary && hasNativeApp(config)) {
    logger.info('glibc allocator: its own thresholds (--allocator-tuning leaves a server with native Python apps as it is: their objects come from it, and fixed thresholds made every block over 128 KiB an mmap of its own)');
  }
  if (config.processes > 1 && cluster.isPrimary) return runPrimary(config, logger);
  const server = await openServer(config, logger);
  for (const group of server.groups) {
    const { name, file, callable, kind, workers } = group.config;
    logger.info({ app: name, file, callable, kind, workers }, `serving ${server.url}${name === '/' ? '/' : `${name}/`} from ${relative(sources.cwd, file) || file}:${callable}`);
    const engine = describeNativeEngine(group.config.settings, workers);
    if (engine) logger.info({ app: name, cpython: group.config.settings.cpython }, `app ${name}: ${engine}`);
    const recycleCost = describeOwnGilRecycling(group.config);
    if (recycleCost) logger.warn({ app: name }, `app ${name}: ${recycleCost}`);
  }
  // Once, from the one process (each of --processes' would say it again).
  if (!config.adminBind && cluster.isPrimary) logger.info(`admin dashboard at ${server.url}${config.adminPath} (loopback clients; docs/admin.md)`);
  watchForProcessReplacement(server.groups, config.maxStuckThreads, logger);
  const stop = (signal: NodeJS.Signals) => {
    logger.info({ signal }, 'shutting down: finishing in-flight requests');
    server.close().then(
      () => { logger.info('stopped'); exitProcess(server.groups, logger); },
      (error: unknown) => { logger.error({ err: error }, 'error while shutting down'); process.exit(1); },
    );
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  // SIGHUP reloads every app without downtime, as for gunicorn and Apache.
  process.on('SIGHUP', () => {
    logger.info({ signal: 'SIGHUP' }, 'reloading every app');
    void server.reload();
  });
  if (config.reload) watchForReload(server.groups, logger);
  return server;
}
