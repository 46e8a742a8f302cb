/**
 * The server's structured log: pino, one event per line, as Fastify logs. Request lines
 * come from access-log.ts; worker output (wsgi.errors) is tagged with app and worker.
 *
 * Two looks for the same events: JSON lines for collectors (and whenever stdout is not a
 * terminal), and pino-pretty's human lines on a terminal. The pretty form is a
 * synchronous stream in this thread rather than a transport thread: it is for people
 * watching a terminal, where a line must be out before the process exits, and the
 * request path's own cost is measured with JSON (load tests pipe stdout).
 */
import { pino, type Logger } from 'pino';
import { build as prettyStream } from 'pino-pretty';
import type { LogFormat, LogLevel } from './options.ts';

/** Fields an access line shows in its message, so they need not be repeated after it. */
const ACCESS_FIELDS = ['method', 'path', 'status', 'bytes', 'ms'];

export function createLogger(
  level: LogLevel,
  format: LogFormat = 'json',
  destination: NodeJS.WritableStream & { isTTY?: boolean } = process.stdout,
): Logger {
  const options = { level, base: { pid: process.pid } };
  if (!wantsPretty(format, destination)) return pino(options, destination);
  return pino(options, prettyStream({
    destination,
    sync: true,
    colorize: destination.isTTY === true,
    translateTime: 'SYS:HH:MM:ss.l',
    ignore: ['pid', 'hostname', 'detail', ...ACCESS_FIELDS].join(','),
    singleLine: true,
    messageFormat: formatMessage,
  }));
}

function wantsPretty(format: LogFormat, destination: { isTTY?: boolean }): boolean {
  return format === 'pretty' || (format === 'auto' && destination.isTTY === true);
}

/**
 * An access line reads as `GET /py 200 12 B 1.3 ms`; a failed request keeps its message
 * after that; a traceback (`detail`) follows on its own lines, as Python printed it.
 */
function formatMessage(log: Record<string, unknown>, messageKey: string): string {
  const message = String(log[messageKey] ?? '');
  const request = log.method === undefined
    ? ''
    : `${String(log.method)} ${String(log.path)} ${String(log.status)} ${String(log.bytes)} B ${String(log.ms)} ms`;
  const head = request === '' ? message : message === 'request' ? request : `${request} — ${message}`;
  return typeof log.detail === 'string' && log.detail !== '' ? `${head}\n${log.detail.trimEnd()}` : head;
}
