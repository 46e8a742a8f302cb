/**
 * buildServer(config, groups): the Fastify instance, never listening (the caller owns
 * `listen`). Fastify parses and limits each request and buffers its body; dispatch.ts
 * takes it from there to the app's interpreters and back to the socket.
 */
import { METHODS } from 'node:http';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { logAccess, refusedAppOf } from './access-log.ts';
import { createAdmin } from './admin/admin.ts';
import { adminAnswers } from './admin/public-targets.ts';
import { registerAdminRoutes } from './admin/routes.ts';
import type { ApplicationGroup } from './pool/application-group.ts';
import type { ServerConfig } from './config.ts';
import { dispatchRequest } from './dispatch.ts';
import { InterpoolError } from './errors.ts';
import { resolveClients } from './client-view.ts';
import { guardConnectionCap } from './connection-cap.ts';
import { applyConnectionLimits, httpServerOptions } from './http-limits.ts';
import { MountTable } from './mount-table.ts';
import { guardRequests, handleClientError, refuseConnect } from './refusals.ts';
import { RETRY_AFTER_SECONDS, type ReportedError } from './response-sender.ts';

export function buildServer(config: ServerConfig, groups: readonly ApplicationGroup[], logger: Logger): FastifyInstance {
  const mounts = new MountTable(groups.map((group) => ({ prefix: group.config.prefix, target: group })));
  // The admin (dashboard, /metrics) is served here unless --admin-bind gives it its own listener.
  const admin = config.adminBind ? undefined : createAdmin(config, groups);
  const appServes = (path: string) => mounts.match(path) !== undefined;
  const fastify = Fastify({
    loggerInstance: logger as FastifyBaseLogger,
    // One access-log line per request is written by dispatch/logAccess, not by Fastify.
    logController: new LogController({ disableRequestLogging: true }),
    // No child logger per request: nothing logs through request.log with its request id
    // (the access line is ours), and a pino child per request was a measurable share of
    // the main thread's allocations (docs/loadtest.md, "The promoted garbage").
    childLoggerFactory: (parent) => parent,
    bodyLimit: config.bodyLimit,
    exposeHeadRoutes: false,
    // Requests during shutdown get the catalog's 503 from the onRequest hook below.
    return503OnClosing: false,
    // Mounts are matched on the raw bytes of the path (PEP 3333 wants them as latin-1),
    // so Fastify's router, which decodes paths as UTF-8 and refuses what is not, only
    // ever sees "/": the request target stays untouched in req.originalUrl. Only the
    // requests the admin answers (admin/public-targets.ts) are routed as they are.
    rewriteUrl: (raw) => (admin && adminAnswers(raw, admin, appServes) ? raw.url! : '/'),
    // Node's parser refusals and timeouts are answered in the catalog's shape (refusals.ts);
    // the head limits and timeouts Node enforces are set from the options (http-limits.ts).
    clientErrorHandler: handleClientError(config, logger),
    http: httpServerOptions(config),
  });
  fastify.server.on('connect', refuseConnect(logger));
  applyConnectionLimits(fastify.server, config);
  guardConnectionCap(fastify.server, config, logger);
  // First of all hooks: a refused request, and whatever follows it on its connection, goes no further.
  fastify.addHook('onRequest', guardRequests(config, logger));
  fastify.decorateRequest('clientView', null);
  fastify.addHook('onRequest', resolveClients(config.forwardedAllowIps));

  // Every body, whatever its type, is buffered as bytes for wsgi.input.
  fastify.removeAllContentTypeParsers();
  fastify.addContentTypeParser('*', { parseAs: 'buffer' }, (_request, body, done) => done(null, body));

  // Shutting down: new requests get 503 (below), responses still to be written close
  // their connections (response-sender.ts).
  let closing = false;
  const isClosing = () => closing;
  fastify.addHook('preClose', async () => { closing = true; });
  // A plain (not async) hook: it runs for every request, and has nothing to wait for.
  fastify.addHook('onRequest', (_request, reply, done) => {
    if (!closing) {
      done();
      return;
    }
    const error = new InterpoolError('INTERPOOL_ERR_SHUTTING_DOWN');
    reply.code(503).header('connection', 'close').header('retry-after', String(RETRY_AFTER_SECONDS))
      .type('text/plain; charset=utf-8').send(`${error.message} (${error.code})\n`);
  });

  // Every method Node's HTTP parser knows reaches the app, as under gunicorn (WebDAV's
  // PROPFIND and MKCOL, a cache's PURGE), and with its body, a GET's included (a search
  // API's query): Fastify routes fewer methods and reads no body for GET, HEAD and TRACE.
  // CONNECT never gets here (refusals.ts answers it 405).
  for (const method of METHODS) if (method !== 'CONNECT') fastify.addHttpMethod(method, { hasBody: true, overrideExisting: true });
  fastify.route({
    method: fastify.supportedMethods,
    url: '/',
    handler: (request, reply) => dispatchRequest(request, reply, mounts, logger, isClosing),
  });

  if (admin) {
    registerAdminRoutes(fastify, admin, 'public', logger);
    fastify.addHook('onClose', async () => admin.close());
  }

  fastify.setErrorHandler((error: Error & { statusCode?: number; code?: string }, request, reply) => {
    const failure = toInterpoolError(error, config.bodyLimit);
    logAccess(logger, request, reply.elapsedTime, { status: failure.statusCode, bytes: 0, workerId: undefined, aborted: false, error: failure }, refusedAppOf(request));
    if (failure.statusCode === 503) reply.header('retry-after', String(failure.retryAfter ?? RETRY_AFTER_SECONDS));
    if (closing) reply.header('connection', 'close');
    reply.code(failure.statusCode).type('text/plain; charset=utf-8').send(`${failure.message} (${failure.code})\n`);
  });

  return fastify;
}

function toInterpoolError(error: Error & { statusCode?: number; code?: string }, bodyLimit: number): ReportedError {
  if (error instanceof InterpoolError) return error;
  if (error.code === 'FST_ERR_CTP_BODY_TOO_LARGE') return new InterpoolError('INTERPOOL_ERR_BODY_TOO_LARGE', [bodyLimit]);
  const statusCode = error.statusCode && error.statusCode >= 400 && error.statusCode < 600 ? error.statusCode : 500;
  return { statusCode, code: error.code ?? 'INTERPOOL_ERR_INTERNAL', message: statusCode < 500 ? error.message : 'internal server error', detail: error.stack };
}
