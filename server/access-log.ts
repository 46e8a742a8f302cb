/**
 * One access-log line per request: method, path (never the query string), status,
 * bytes, milliseconds, app and worker id. Failures at 5xx carry their code and, for the
 * log only, the detail (traceback or stack).
 */
import type { FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { splitRequestTarget } from './environ.ts';
import { channels, type RequestFinished } from './diagnostics.ts';
import type { SendOutcome } from './response-sender.ts';

/**
 * Requests refused after their app was chosen (queue full, app failing to boot): the
 * error handler writes their line, and counts them for that app rather than as "-".
 */
const refusedFor = new WeakMap<FastifyRequest, string>();

export function markRefusedFor(request: FastifyRequest, app: string): void {
  refusedFor.set(request, app);
}

/** The app a refused request was meant for, or "-" when it was refused before one was chosen. */
export function refusedAppOf(request: FastifyRequest): string {
  return refusedFor.get(request) ?? '-';
}

/** The request target as the client sent it (app.ts routes every request on "/"). */
export function requestTarget(request: FastifyRequest): string {
  return request.originalUrl;
}

export function logAccess(logger: Logger, request: FastifyRequest, ms: number, outcome: SendOutcome, app: string, requestId?: number): void {
  if (channels.requestFinished.hasSubscribers) {
    const finished: RequestFinished = {
      app, requestId, method: request.raw.method ?? '', status: outcome.status, bytes: outcome.bytes, ms,
      workerId: outcome.workerId, aborted: outcome.aborted, code: outcome.error?.code,
    };
    channels.requestFinished.publish(finished);
  }
  const serverError = outcome.error && outcome.error.statusCode >= 500 ? outcome.error : undefined;
  // A request past --timeout ends as configured (504; a Python app gets
  // interpool.RequestTimeout): one info line with its code, no traceback.
  const timedOut = serverError?.code === 'INTERPOOL_ERR_TIMEOUT' ? serverError : undefined;
  const failure = timedOut ? undefined : serverError;
  if (outcome.warning) logger.warn({ app, path: splitRequestTarget(requestTarget(request)).rawPath, status: outcome.status }, outcome.warning);
  // At --log-level warn and above, a plain access line is not written: build nothing.
  if (!failure && !logger.isLevelEnabled('info')) return;
  const { rawPath } = splitRequestTarget(requestTarget(request));
  const line = {
    method: request.raw.method,
    path: rawPath,
    status: outcome.status,
    bytes: outcome.bytes,
    ms: Math.round(ms * 10) / 10,
    app,
    worker: outcome.workerId ?? '-',
    ...(outcome.aborted ? { aborted: true } : {}),
  };
  if (failure) {
    logger.error({ ...line, code: failure.code, detail: failure.detail }, failure.message);
  } else if (timedOut) {
    logger.info({ ...line, code: timedOut.code }, timedOut.message);
  } else {
    logger.info(line, 'request');
  }
}
