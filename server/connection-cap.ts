/**
 * What happens at --max-connections. Node closes every connection accepted past the cap
 * at once, without a word; left at that, a few hundred slow or idle clients lock every
 * other client out for as long as they like. So, at the cap:
 *
 * - each refused connection is counted (the `interpool:connection:refused` diagnostics
 *   channel, interpool_connections_refused_total in /metrics) and logged, at most one
 *   warning line every LOG_EVERY_MS with the number refused since the last one;
 * - room is made, as nginx reuses keep-alive connections when it runs short of them:
 *   the idle connections are closed when the cap is reached, and until the server has
 *   room again the time a connection has to send its request head (Node counts it from
 *   the connection's first byte, or from its start for a client that sends nothing)
 *   and the time a keep-alive connection may stay idle both shrink to a quarter of
 *   --headers-timeout. Clients holding a slot with a head that does not come (slowloris)
 *   are cut off (408) sooner, and the ones that send a request get in.
 *
 * Idle connections are closed once, on reaching the cap, not on every refusal: Node
 * counts a connection that has just been accepted as idle until its first bytes arrive,
 * and closing them at every refusal would turn away the very clients the room is for.
 * The server leaves that state once it holds RELAX_BELOW of its cap again.
 */
import type { Server } from 'node:http';
import type { Logger } from 'pino';
import { channels, type ConnectionRefused } from './diagnostics.ts';
import type { ServerConfig } from './config.ts';

/** At most one warning line this often while connections are refused. */
const LOG_EVERY_MS = 10_000;
/** How often a crowded server checks whether it has room again. */
const CHECK_EVERY_MS = 500;
/** Back to normal below this share of --max-connections. */
const RELAX_BELOW = 0.9;

export type ConnectionCapConfig = Pick<ServerConfig, 'maxConnections' | 'headersTimeout' | 'keepAliveTimeout'>;

/** The head timeout while the server is at its cap, in seconds (0: no timeout, as configured). */
export function crowdedHeadersTimeout(config: ConnectionCapConfig): number {
  return config.headersTimeout / 4;
}

/** Count, log and make room at --max-connections (see above); call once, before listen. */
export function guardConnectionCap(server: Server, config: ConnectionCapConfig, logger: Logger): void {
  const normalHeadersTimeout = server.headersTimeout;
  const normalKeepAliveTimeout = server.keepAliveTimeout;
  let crowded: NodeJS.Timeout | undefined;
  let unlogged = 0;
  let lastLog = 0;
  let flush: NodeJS.Timeout | undefined;

  const log = () => {
    flush = undefined;
    if (unlogged === 0) return;
    logger.warn({ maxConnections: config.maxConnections, refused: unlogged },
      `refusing connections: --max-connections (${config.maxConnections}) reached; ${unlogged} refused since the last report`);
    unlogged = 0;
    lastLog = Date.now();
  };

  const relaxWhenRoom = () => {
    server.getConnections((error, count) => {
      if (error || crowded === undefined || count >= config.maxConnections * RELAX_BELOW) return;
      clearInterval(crowded);
      crowded = undefined;
      server.headersTimeout = normalHeadersTimeout;
      server.keepAliveTimeout = normalKeepAliveTimeout;
      logger.info({ maxConnections: config.maxConnections, connections: count }, 'connections back under --max-connections');
    });
  };

  server.on('drop', (data?: { remoteAddress?: string }) => {
    if (channels.connectionRefused.hasSubscribers) {
      channels.connectionRefused.publish({ remoteAddress: data?.remoteAddress, maxConnections: config.maxConnections } satisfies ConnectionRefused);
    }
    unlogged++;
    const wait = lastLog + LOG_EVERY_MS - Date.now();
    if (wait <= 0) log();
    else flush ??= setTimeout(log, wait).unref();
    if (crowded !== undefined) return;
    crowded = setInterval(relaxWhenRoom, CHECK_EVERY_MS).unref();
    if (config.headersTimeout > 0) {
      const crowdedMs = Math.round(crowdedHeadersTimeout(config) * 1000);
      server.headersTimeout = crowdedMs;
      if (config.keepAliveTimeout > 0) server.keepAliveTimeout = Math.min(normalKeepAliveTimeout, crowdedMs);
    }
    server.closeIdleConnections();
  });

  server.on('close', () => {
    clearInterval(crowded);
    clearTimeout(flush);
    log();
  });
}
