/**
 * buildServer(config, groups): the Fastify instance, never listening (the caller owns
 * `listen`). Every request is parsed and limited here, matched to a mount, turned into
 * a RequestEnvelope and handed to that app's pool; the response is written straight to
 * the socket as the worker produces it.
 */
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import type { RequestEnvelope } from '../runtime/protocol.ts';
import type { ApplicationGroup } from './application-group.ts';
import type { ServerConfig } from './config.ts';
import { buildCgi, decodePathLatin1, splitRequestTarget, type RequestFacts } from './environ.ts';
import { InterpoolError } from './errors.ts';
import { applyConnectionLimits, httpServerOptions } from './http-limits.ts';
import { MountTable } from './mount-table.ts';
import { guardRequests, handleClientError } from './refusals.ts';
import { RETRY_AFTER_SECONDS, ResponseSender, type ReportedError, type SendOutcome } from './response-sender.ts';

const EMPTY_BODY = new Uint8Array(0);

export function buildServer(config: ServerConfig, groups: readonly ApplicationGroup[], logger: Logger): FastifyInstance {
  const mounts = new MountTable(groups.map((group) => ({ prefix: group.config.prefix, target: group })));
  const fastify = Fastify({
    loggerInstance: logger as FastifyBaseLogger,
    // One access-log line per request is written by dispatch/logAccess, not by Fastify.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: config.bodyLimit,
    exposeHeadRoutes: false,
    // Requests during shutdown get the catalog's 503 from the onRequest hook below.
    return503OnClosing: false,
    // Mounts are matched on the raw bytes of the path (PEP 3333 wants them as latin-1),
    // so Fastify's router, which decodes paths as UTF-8 and refuses what is not, only
    // ever sees "/": the request target stays untouched in req.originalUrl.
    rewriteUrl: () => '/',
    // Node's parser refusals and timeouts are answered in the catalog's shape (refusals.ts);
    // the head limits and timeouts Node enforces are set from the options (http-limits.ts).
    clientErrorHandler: handleClientError(config, logger),
    http: httpServerOptions(config),
  });
  applyConnectionLimits(fastify.server, config);
  // First of all hooks: a refused request, and whatever follows it on its connection, goes no further.
  fastify.addHook('onRequest', guardRequests(config, logger));

  // Every body, whatever its type, is buffered as bytes for wsgi.input.
  fastify.removeAllContentTypeParsers();
  fastify.addContentTypeParser('*', { parseAs: 'buffer' }, (_request, body, done) => done(null, body));

  let closing = false;
  fastify.addHook('preClose', async () => { closing = true; });
  fastify.addHook('onRequest', async (_request, reply) => {
    if (!closing) return;
    const error = new InterpoolError('INTERPOOL_ERR_SHUTTING_DOWN');
    reply.code(503).header('connection', 'close').header('retry-after', String(RETRY_AFTER_SECONDS))
      .type('text/plain; charset=utf-8').send(`${error.message} (${error.code})\n`);
  });

  fastify.route({
    method: fastify.supportedMethods,
    url: '/',
    handler: (request, reply) => dispatch(request, reply, mounts, logger),
  });

  fastify.setErrorHandler((error: Error & { statusCode?: number; code?: string }, request, reply) => {
    const failure = toInterpoolError(error, config.bodyLimit);
    logAccess(logger, request, reply.elapsedTime, { status: failure.statusCode, bytes: 0, workerId: undefined, aborted: false, error: failure }, '-');
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

async function dispatch(
  request: FastifyRequest,
  reply: FastifyReply,
  mounts: MountTable<ApplicationGroup>,
  logger: Logger,
): Promise<void> {
  const raw = request.raw;
  const target = requestTarget(request);
  const { rawPath, query } = splitRequestTarget(target);
  const match = mounts.match(decodePathLatin1(rawPath));
  if (!match) throw new InterpoolError('INTERPOOL_ERR_NOT_FOUND', [rawPath]);

  const group = match.target;
  const body = ownedBody(request.body);
  const socket = raw.socket;
  const facts: RequestFacts = {
    method: raw.method ?? 'GET',
    rawUrl: target,
    rawHeaders: raw.rawHeaders,
    httpVersion: raw.httpVersion,
    localAddress: socket.localAddress ?? '',
    localPort: socket.localPort ?? 0,
    remoteAddress: socket.remoteAddress ?? '',
    remotePort: socket.remotePort ?? 0,
    urlScheme: 'http',
    bodyLength: body.byteLength,
  };
  const id = group.nextRequestId();
  const envelope: RequestEnvelope = { id, cgi: buildCgi(facts, match.scriptName, match.pathInfo, query), urlScheme: facts.urlScheme, body };

  reply.hijack();
  const sender = new ResponseSender(reply.raw, group.config.name, () => group.cancel(id));
  const abort = new AbortController();
  reply.raw.on('close', () => {
    if (sender.done) return;
    sender.clientGone();
    // Running: the worker stops and calls close(). Still queued: leave the queue.
    if (!group.cancel(id)) abort.abort();
  });
  let settled = false;
  group.run(envelope, sender, abort.signal).then(
    (result) => { settled = true; sender.onTaskResult(result); },
    (error: Error) => {
      settled = true;
      if (error.name === 'AbortError') return;
      sender.fail(new InterpoolError('INTERPOOL_ERR_WORKER_DIED', [error.message]));
    },
  );
  const stopTimeout = enforceTimeout(group, id, sender, abort, () => settled, logger);
  const outcome = await sender.finished;
  stopTimeout();
  group.release(id);
  logAccess(logger, request, reply.elapsedTime, outcome, group.config.name);
}

/**
 * --timeout, escalating: at the deadline the client gets 504 (or, mid-stream, an
 * aborted connection) and the interpreter is interrupted; if the task has not returned
 * after --timeout-grace, aborting it makes piscina terminate and replace the worker.
 * A request still queued at its deadline just leaves the queue.
 */
function enforceTimeout(
  group: ApplicationGroup, id: number, sender: ResponseSender, abort: AbortController, settled: () => boolean, logger: Logger,
): () => void {
  const { timeout, timeoutGrace, name } = group.config;
  if (timeout <= 0) return () => {};
  let grace: NodeJS.Timeout | undefined;
  const deadline = setTimeout(() => {
    if (settled()) return;
    sender.fail(new InterpoolError('INTERPOOL_ERR_TIMEOUT', [timeout]));
    if (!group.interrupt(id)) {
      abort.abort();
      return;
    }
    grace = setTimeout(() => {
      if (settled()) return;
      logger.warn({ app: name, timeoutGrace }, 'interpreter did not return after its timeout interrupt; terminating its worker');
      abort.abort();
    }, timeoutGrace * 1000);
    grace.unref();
  }, timeout * 1000);
  deadline.unref();
  return () => clearTimeout(deadline);
}

/** Fastify hands us a Buffer that may share a pooled slab; the worker gets its own copy. */
function ownedBody(body: unknown): Uint8Array {
  if (!(body instanceof Uint8Array) || body.byteLength === 0) return EMPTY_BODY;
  return new Uint8Array(body);
}

/** The request target as the client sent it (see rewriteUrl above). */
function requestTarget(request: FastifyRequest): string {
  return request.originalUrl;
}

function logAccess(logger: Logger, request: FastifyRequest, ms: number, outcome: SendOutcome, app: string): void {
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
  if (outcome.error && outcome.error.statusCode >= 500) {
    logger.error({ ...line, code: outcome.error.code, detail: outcome.error.detail }, outcome.error.message);
  } else {
    logger.info(line, 'request');
  }
}
