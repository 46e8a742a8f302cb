/**
 * The server's structured log: pino, one JSON line per event, as Fastify logs. Request
 * lines come from app.ts; worker output (wsgi.errors) is tagged with app and worker.
 */
import { pino, type Logger } from 'pino';
import type { LogLevel } from './options.ts';

export function createLogger(level: LogLevel, destination: NodeJS.WritableStream = process.stdout): Logger {
  return pino({ level, base: { pid: process.pid } }, destination);
}
