/**
 * The Node http.Server settings behind the request limits and slow-client defences, so
 * that request-guard.ts sees every header the client sent and Node's own timers enforce
 * the timeouts:
 *
 * - maxHeaderSize is set just above what the three --limit-request-* options allow in
 *   total, so a request within the limits is never cut short by Node (its default is
 *   16 KiB) and request-guard.ts can name the limit that was passed. A head past even
 *   that is refused by the parser itself, as 431 INTERPOOL_ERR_HEAD_TOO_LARGE.
 * - maxHeadersCount is one more than --limit-request-fields: Node silently drops headers
 *   past it, so one extra is kept to tell "exactly at the limit" from "over it".
 * - headersTimeout and requestTimeout (408) are checked by Node every
 *   connectionsCheckingInterval, which is made short enough for the timeouts to matter.
 * - keepAliveTimeout closes idle keep-alive connections; 0 turns keep-alive off.
 * - maxConnections: connections past it are closed as soon as they are accepted.
 */
import type { Server, ServerOptions } from 'node:http';
import type { ServerConfig } from './config.ts';
import type { HeadLimits } from './request-guard.ts';

export type HttpLimitsConfig = Pick<ServerConfig,
  'limitRequestLine' | 'limitRequestFields' | 'limitRequestFieldSize' | 'headersTimeout' | 'bodyTimeout' | 'keepAliveTimeout' | 'maxConnections'>;

export function headLimitsOf(config: HttpLimitsConfig): HeadLimits {
  return { requestLine: config.limitRequestLine, fields: config.limitRequestFields, fieldSize: config.limitRequestFieldSize };
}

/** The largest request head the limits allow: request line, every field at its largest, CRLFs. */
export function headBudget(config: HttpLimitsConfig): number {
  return config.limitRequestLine + 2 + (config.limitRequestFields + 1) * (config.limitRequestFieldSize + 2) + 2;
}

/** Options only http.createServer takes (passed through Fastify's `http` option). */
export function httpServerOptions(config: HttpLimitsConfig): ServerOptions {
  const timeouts = [config.headersTimeout, config.bodyTimeout].filter((seconds) => seconds > 0);
  const shortest = timeouts.length === 0 ? 30 : Math.min(...timeouts);
  return {
    maxHeaderSize: headBudget(config),
    // Node answers a missing Host itself, bypassing clientError; request-guard.ts does it instead.
    requireHostHeader: false,
    // Node checks header and request deadlines on this interval (30 s by default).
    connectionsCheckingInterval: Math.round(Math.min(1000, Math.max(50, (shortest * 1000) / 4))),
  };
}

/** Set the limits Node reads from the server object; call before listen. */
export function applyConnectionLimits(server: Server, config: HttpLimitsConfig): void {
  server.maxHeadersCount = config.limitRequestFields + 1;
  server.headersTimeout = Math.round(config.headersTimeout * 1000);
  server.requestTimeout = Math.round(config.bodyTimeout * 1000);
  if (config.keepAliveTimeout > 0) {
    server.keepAliveTimeout = Math.round(config.keepAliveTimeout * 1000);
  } else {
    // Node reads keepAliveTimeout 0 as "never time out"; here 0 means no keep-alive.
    server.maxRequestsPerSocket = 1;
  }
  server.maxConnections = config.maxConnections;
}
